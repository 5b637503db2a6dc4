"""CLIP end to end: a tiny random CLIP built by the builder, served by launch_server, against
transformers' get_text_features / get_image_features; images from every accepted source."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.fixtures.media_server import media_server, photo_path
from tests.fixtures.tiny_multimodal import make_tiny_clip
from tests.helpers import assert_parity, build_artifact, decode_embeddings, running_server

TEXTS = ["a photo of an astronaut", "What is the capital of France?", "a cup of coffee"]


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("ckpt") / "tiny-clip")


@pytest.fixture(scope="module")
def clip_artifact(tmp_path_factory: pytest.TempPathFactory, clip_checkpoint: Path) -> Path:
    return build_artifact(clip_checkpoint, tmp_path_factory.mktemp("art") / "clip")


@pytest.fixture(scope="module")
def media() -> Iterator[str]:
    with media_server() as url:
        yield url


@pytest.fixture(scope="module")
def local_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    (folder / "chelsea.png").write_bytes(photo_path("chelsea.png").read_bytes())
    return folder


@pytest.fixture(scope="module")
def clip_server(clip_artifact: Path, local_dir: Path) -> Iterator[str]:
    with running_server(clip_artifact, "--allowed-media-domains", "127.0.0.1",
                        "--allowed-local-media-path", str(local_dir),
                        "--max-image-bytes", str(2 * 1024 * 1024)) as url:
        yield url


def reference(checkpoint: Path, items: list[tuple[str | None, str | None]]) -> np.ndarray:
    from builder.families.clip import reference as reference_items
    from models.registry import resolve

    _, spec = resolve(checkpoint)
    pairs = [(t, Image.open(photo_path(i)) if i else None) for t, i in items]
    return reference_items(checkpoint, spec, pairs)


def embed(url: str, items: list, **extra: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json={"model": "clip", "input": items, **extra},
                      timeout=60)


def test_text_and_images_from_every_source_match_transformers(
        clip_server: str, clip_checkpoint: Path, media: str, local_dir: Path) -> None:
    coffee = base64.b64encode(photo_path("coffee.png").read_bytes()).decode()
    items = [{"text": TEXTS[0]}, {"image": f"{media}/astronaut.png"},
             {"image": f"data:image/png;base64,{coffee}"}, TEXTS[1],
             {"image": str(local_dir / "chelsea.png")}, {"image": f"{media}/rocket.jpg"},
             {"text": TEXTS[2]}, {"image": coffee}]
    r = embed(clip_server, items, encoding_format="base64")
    assert r.status_code == 200, r.text
    ours = decode_embeddings(r.json())
    names = [None, "astronaut.png", "coffee.png", None, "chelsea.png", "rocket.jpg", None,
             "coffee.png"]
    texts = [TEXTS[0], None, None, TEXTS[1], None, None, TEXTS[2], None]
    ref = reference(clip_checkpoint, list(zip(texts, names)))
    is_text = np.array([t is not None for t in texts])
    assert_parity(ours[is_text], ref[is_text], 0.9999)
    assert_parity(ours[~is_text], ref[~is_text], 0.999)
    assert [d["index"] for d in r.json()["data"]] == list(range(len(items)))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_seed_multimodal_request_shape(clip_server: str, media: str) -> None:
    r = embed(clip_server, [{"text": "Represent this image in embedding space."},
                            {"image": f"{media}/astronaut.png"}])
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["data"]) == 2 and len(body["data"][1]["embedding"]) == 24
    assert body["usage"]["prompt_tokens"] > 0


def test_plain_text_input_uses_the_text_tower(clip_server: str, clip_checkpoint: Path) -> None:
    r = httpx.post(f"{clip_server}/v1/embeddings", json={"input": TEXTS}, timeout=60)
    assert r.status_code == 200, r.text
    assert_parity(decode_embeddings(r.json()), reference(clip_checkpoint, [(t, None) for t in TEXTS]))


@pytest.mark.parametrize("image,code", [
    ("http://localhost:{port}/astronaut.png", "forbidden_image_source"),
    ("{media}/redirect-localhost", "forbidden_image_source"),
    ("{media}/redirect-metadata", "forbidden_image_source"),
    ("{media}/redirect-file", "unsupported_image_source"),
    ("http://169.254.169.254/latest/meta-data/", "forbidden_image_source"),
    ("http://10.0.0.1/a.png", "forbidden_image_source"),
    ("file:///etc/passwd", "unsupported_image_source"),
    ("/etc/passwd", "unsupported_image_source"),
    ("{local}/../../etc/passwd", "unsupported_image_source"),
    ("{media}/bomb.png", "image_too_large"),
    ("{media}/huge", "image_too_large"),
    ("{media}/not-an-image", "invalid_image"),
    ("data:image/png;base64,@@@@", "invalid_image"),
    ("bm90IGFuIGltYWdlIGF0IGFsbA==", "invalid_image"),
])
def test_unsafe_sources_refused_with_400(clip_server: str, media: str, local_dir: Path,
                                         image: str, code: str) -> None:
    port = media.rsplit(":", 1)[1]
    source = image.format(media=media, port=port, local=local_dir)
    r = embed(clip_server, [{"text": "fine"}, {"image": source}])
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", "input", code)
    assert httpx.get(f"{clip_server}/health").status_code == 200


def test_text_and_image_in_one_clip_item_is_400(clip_server: str, media: str) -> None:
    r = embed(clip_server, [{"text": "a", "image": f"{media}/astronaut.png"}])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_input"


async def test_images_of_concurrent_requests_share_tower_batches(clip_artifact: Path) -> None:
    """Requests arriving together are batched on the image tower; answers stay per request."""
    from builder.verify_items import Item
    from runtime.limits import BatchFlags
    from runtime.config import RuntimeConfig
    from runtime.embedder import Embedder

    names = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "camera.png"]
    sources = ["data:image/png;base64," + base64.b64encode(photo_path(n).read_bytes()).decode()
               for n in names]
    # A wide gather window so the concurrent requests meet in the batcher.
    emb = Embedder.load(clip_artifact, RuntimeConfig(batch=BatchFlags(max_wait_ms=1000)))
    await emb.start()
    try:
        before = emb.batchers["image"].batches_run
        together = await asyncio.gather(*(emb.embed_items([Item(image=s)]) for s in sources))
        batched = emb.batchers["image"].batches_run - before
        alone = [await emb.embed_items([Item(image=s)]) for s in sources]
    finally:
        await emb.close()
    assert batched < len(sources)
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
