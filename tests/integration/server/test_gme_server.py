"""GME end to end: a tiny random Qwen2-VL built by the builder, served with
--chat-template gme-qwen2-vl, against transformers (mrope, last token, GME's template)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.fixtures.media_server import media_server, photo_path
from tests.fixtures.tiny_multimodal import make_tiny_qwen2_vl
from tests.helpers import assert_parity, build_artifact, decode_embeddings, running_server


@pytest.fixture(scope="module")
def gme_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_qwen2_vl(tmp_path_factory.mktemp("ckpt") / "tiny-gme")


@pytest.fixture(scope="module")
def media() -> Iterator[str]:
    with media_server() as url:
        yield url


@pytest.fixture(scope="module")
def gme_artifact(tmp_path_factory: pytest.TempPathFactory, gme_checkpoint: Path) -> Path:
    return build_artifact(gme_checkpoint, tmp_path_factory.mktemp("art") / "gme")


@pytest.fixture(scope="module")
def gme_server(gme_artifact: Path) -> Iterator[str]:
    with running_server(gme_artifact, "--chat-template", "gme-qwen2-vl",
                        "--allowed-media-domains", "127.0.0.1") as url:
        yield url


def reference(checkpoint: Path, items: list[tuple[str | None, str | None]]) -> np.ndarray:
    from builder.families.gme import reference as reference_items
    from models.registry import resolve

    _, spec = resolve(checkpoint)
    return reference_items(checkpoint, spec,
                           [(t, Image.open(photo_path(i)) if i else None) for t, i in items])


def test_seed_request_and_every_item_kind_match_transformers(
        gme_server: str, gme_checkpoint: Path, media: str) -> None:
    text = "Represent this image in embedding space."
    items = [{"text": text}, {"image": f"{media}/astronaut.png"},
             {"text": "What kind of drink is this?", "image": f"{media}/coffee.png"},
             "What is the capital of France?", {"image": f"{media}/rocket.jpg"}]
    r = httpx.post(f"{gme_server}/v1/embeddings", json={"model": "gme-qwen2-vl", "input": items},
                   timeout=120)
    assert r.status_code == 200, r.text
    ours = decode_embeddings(r.json())
    pairs = [(text, None), (None, "astronaut.png"), ("What kind of drink is this?", "coffee.png"),
             ("What is the capital of France?", None), (None, "rocket.jpg")]
    ref = reference(gme_checkpoint, pairs)
    is_text = np.array([i is None for _, i in pairs])
    assert_parity(ours[is_text], ref[is_text], 0.9999)
    assert_parity(ours[~is_text], ref[~is_text], 0.999)
    # Image tokens count as prompt tokens, as they do in the language model.
    assert r.json()["usage"]["prompt_tokens"] > 5 * 20


def test_plain_strings_go_through_the_template(gme_server: str, gme_checkpoint: Path) -> None:
    texts = ["a photo of an astronaut", "The quick brown fox jumps over the lazy dog."]
    r = httpx.post(f"{gme_server}/v1/embeddings", json={"input": texts}, timeout=60)
    assert r.status_code == 200, r.text
    assert_parity(decode_embeddings(r.json()), reference(gme_checkpoint, [(t, None) for t in texts]))


def test_unsafe_image_is_400_and_server_stays_healthy(gme_server: str, media: str) -> None:
    port = media.rsplit(":", 1)[1]
    r = httpx.post(f"{gme_server}/v1/embeddings", timeout=60, json={
        "input": [{"text": "x", "image": f"http://localhost:{port}/coffee.png"}]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "forbidden_image_source"
    assert httpx.get(f"{gme_server}/health").status_code == 200


def test_another_chat_template_is_refused_at_launch(gme_artifact: Path) -> None:
    from runtime.errors import ArtifactError
    from server.launch_server import check_chat_template

    check_chat_template("gme-qwen2-vl", gme_artifact)
    check_chat_template(None, gme_artifact)
    with pytest.raises(ArtifactError, match="gme-qwen2-vl"):
        check_chat_template("chatml", gme_artifact)


def test_token_ids_used_as_given_and_no_dimensions(gme_server: str, gme_checkpoint: Path) -> None:
    import torch

    from builder.families.gme import load

    rows = [[1, 2, 3], [4, 5, 6, 7, 8]]
    r = httpx.post(f"{gme_server}/v1/embeddings", json={"input": rows}, timeout=60)
    assert r.status_code == 200, r.text
    model = load(gme_checkpoint)
    with torch.inference_mode():
        ref = np.stack([torch.nn.functional.normalize(
            model(input_ids=torch.tensor([row])).last_hidden_state[:, -1], dim=-1).numpy()[0]
            for row in rows])
    assert_parity(decode_embeddings(r.json()), ref)
    r = httpx.post(f"{gme_server}/v1/embeddings", json={"input": "x", "dimensions": 8})
    assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions"
