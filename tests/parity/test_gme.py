"""GME parity: the served tiny Qwen2-VL (--chat-template gme-qwen2-vl) against transformers
with GME's template, mrope and last-token pooling (builder/families/gme.py's reference):
text in fp32 within SGLang's 1e-5 on SGLang's prompts; every item kind at the image gate."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from tests.fixtures.parity_prompts import TOLERANCE, fitted
from tests.helpers import (assert_parity, assert_served_texts_match, decode_embeddings,
                           family_reference)


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
    ref = family_reference(gme_checkpoint, pairs)
    is_text = np.array([i is None for _, i in pairs])
    assert_parity(ours[is_text], ref[is_text], 0.9999)
    assert_parity(ours[~is_text], ref[~is_text], 0.999)
    # Image tokens count as prompt tokens, as they do in the language model.
    assert r.json()["usage"]["prompt_tokens"] > 5 * 20


def test_plain_strings_go_through_the_template(gme_server: str, gme_checkpoint: Path) -> None:
    assert_served_texts_match(gme_server, gme_checkpoint, [
        "a photo of an astronaut", "The quick brown fox jumps over the lazy dog."])


def test_sglang_prompts_within_1e_5(gme_server: str, gme_checkpoint: Path,
                                    gme_artifact: Path) -> None:
    assert_served_texts_match(gme_server, gme_checkpoint, fitted(gme_server, gme_artifact),
                              1 - TOLERANCE)
