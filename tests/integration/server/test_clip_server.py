"""CLIP end to end: a tiny random CLIP built by the builder, served by launch_server: the
seed request, unsafe image sources, image batching (its parity: tests/parity/test_clip.py)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.fixtures.media_server import photo_path


def embed(url: str, items: list, **extra: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json={"model": "clip", "input": items, **extra},
                      timeout=60)


def test_seed_multimodal_request_shape(clip_server: str, media: str) -> None:
    r = embed(clip_server, [{"text": "Represent this image in embedding space."},
                            {"image": f"{media}/astronaut.png"}])
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["data"]) == 2 and len(body["data"][1]["embedding"]) == 24
    assert body["usage"]["prompt_tokens"] > 0


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
    from runtime.pipeline.limits import BatchFlags
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder

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


def test_image_batches_reach_the_metrics(clip_server: str, media: str) -> None:
    """Every tower's batcher feeds /metrics: an image-only request adds image-tower batches
    (CLIP's images run on a batcher of their own)."""
    def batches() -> float:
        text = httpx.get(f"{clip_server}/metrics", timeout=10).text
        return float(next(line.split()[-1] for line in text.splitlines()
                          if line.startswith("trt_embed_batch_rows_count")))

    before = batches()
    r = embed(clip_server, [{"image": f"{media}/astronaut.png"}])
    assert r.status_code == 200, r.text
    assert batches() == before + 1  # the one image batch; no text batch ran
