"""GME end to end: a tiny random Qwen2-VL built by the builder, served with
--chat-template gme-qwen2-vl: unsafe images, the chat template check, token ids as given
(its parity against transformers: tests/parity/test_gme.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import assert_parity, decode_embeddings


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
