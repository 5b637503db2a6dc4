"""CLIP parity: the served tiny CLIP against transformers' get_text_features /
get_image_features (builder/families/clip.py's reference), text in fp32 within SGLang's 1e-5
on SGLang's prompts; images from every accepted source at the image gate."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np

from tests.fixtures.media_server import photo_path
from tests.fixtures.parity_prompts import TOLERANCE, fitted
from tests.helpers import (assert_parity, assert_served_texts_match, decode_embeddings,
                           family_reference)

TEXTS = ["a photo of an astronaut", "What is the capital of France?", "a cup of coffee"]


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
    ref = family_reference(clip_checkpoint, list(zip(texts, names)))
    is_text = np.array([t is not None for t in texts])
    assert_parity(ours[is_text], ref[is_text], 0.9999)
    assert_parity(ours[~is_text], ref[~is_text], 0.999)
    assert [d["index"] for d in r.json()["data"]] == list(range(len(items)))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_plain_text_input_uses_the_text_tower(clip_server: str, clip_checkpoint: Path) -> None:
    assert_served_texts_match(clip_server, clip_checkpoint, TEXTS)


def test_sglang_prompts_within_1e_5(clip_server: str, clip_checkpoint: Path,
                                    clip_artifact: Path) -> None:
    assert_served_texts_match(clip_server, clip_checkpoint, fitted(clip_server, clip_artifact),
                              1 - TOLERANCE)
