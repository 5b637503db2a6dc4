"""SGLang's native routes (/encode, /tokenize, /detokenize, /get_server_info, /v1/score) and
TEI's /embed on the bundled all-MiniLM, in their own request and response shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest

from tests.helpers import assert_parity, st_reference
from tests.inprocess import serve, server_config, wait_for

TEXTS = ["Hello world", "What is the capital of France?"]


@pytest.fixture(scope="module")
def url(minilm_artifact: Path) -> Iterator[str]:
    with serve(server_config(minilm_artifact, api_key="k")) as (base, app):
        wait_for(lambda: app.state.readiness.ready, "warm-up")
        yield base


@pytest.fixture(scope="module")
def reference(minilm_path: Path) -> np.ndarray:
    return st_reference(minilm_path, TEXTS)


def post(url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(url + path, json=body, headers={"Authorization": "Bearer k"}, timeout=60)


def test_encode_one_and_many(url: str, reference: np.ndarray) -> None:
    one = post(url, "/encode", {"text": TEXTS[0]})
    assert one.status_code == 200, one.text
    assert set(one.json()) == {"embedding", "meta_info"}
    assert one.json()["meta_info"]["prompt_tokens"] == 4  # [CLS] hello world [SEP]
    assert_parity(np.array([one.json()["embedding"]], dtype=np.float32), reference[:1])
    many = post(url, "/encode", {"text": TEXTS})
    assert [len(m["embedding"]) for m in many.json()] == [384, 384]
    assert_parity(np.array([m["embedding"] for m in many.json()], dtype=np.float32), reference)
    tokens = post(url, "/tokenize", {"prompt": TEXTS[0]}).json()["tokens"]
    by_ids = httpx.put(url + "/encode", json={"input_ids": tokens},
                       headers={"Authorization": "Bearer k"}).json()
    np.testing.assert_allclose(by_ids["embedding"], one.json()["embedding"], atol=1e-6)
    # /classify is for sequence-classification models: an embedding model says where to go
    classified = post(url, "/classify", {"text": TEXTS[0]})
    assert classified.status_code == 400
    assert classified.json()["error"] == {
        "message": "/classify answers a sequence-classification model's class logits; this "
                   "model is an embedding model: its vector is at /encode and /v1/embeddings.",
        "type": "invalid_request_error", "param": "model", "code": "unsupported_model"}


def test_encode_mistakes_are_400(url: str) -> None:
    bodies: list[dict[str, object]] = [{}, {"text": ""}, {"text": "x", "dimensions": 8},
                                       {"input_ids": [[]]},
                                       {"image_data": [None]}]  # schemathesis found: was 500
    for body in bodies:
        assert post(url, "/encode", body).status_code == 400, body


def test_tokenize_and_detokenize_round_trip(url: str) -> None:
    one = post(url, "/tokenize", {"prompt": "hello world"}).json()
    assert one == {"tokens": [101, 7592, 2088, 102], "count": 4, "max_model_len": 256}
    bare = post(url, "/v1/tokenize", {"prompt": ["hello", "hello world"],
                                      "add_special_tokens": False}).json()
    assert bare == {"tokens": [[7592], [7592, 2088]], "count": [1, 2], "max_model_len": 256}
    assert post(url, "/detokenize", {"tokens": one["tokens"]}).json() == {"text": "hello world"}
    kept = post(url, "/v1/detokenize", {"tokens": [one["tokens"]],
                                        "skip_special_tokens": False}).json()
    assert kept == {"text": ["[CLS] hello world [SEP]"]}
    assert post(url, "/detokenize", {"tokens": [99999]}).status_code == 400


def test_server_info_under_both_names(url: str) -> None:
    for path in ("/get_server_info", "/server_info"):
        info = httpx.get(url + path, headers={"Authorization": "Bearer k"}).json()
        assert info["served_model_name"] == "m" and info["is_embedding"] is True
        assert info["context_length"] == 257 and info["api_key_required"] is True
        assert "k" not in {str(v) for v in info.values()}


def test_score_is_400_for_an_embedding_model(url: str) -> None:
    r = post(url, "/v1/score", {"query": "q", "items": ["a", "b"], "label_token_ids": [1]})
    assert r.status_code == 400
    assert "embedding model" in r.json()["error"]["message"]


def test_tei_embed_bare_array(url: str, reference: np.ndarray, minilm_path: Path) -> None:
    r = post(url, "/embed", {"inputs": TEXTS})
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert_parity(np.array(r.json(), dtype=np.float32), reference)
    single = post(url, "/embed", {"inputs": TEXTS[0], "normalize": True}).json()
    assert len(single) == 1 and len(single[0]) == 384
    long_text = "word " * 400
    cut = post(url, "/embed", {"inputs": long_text, "truncate": True,
                               "truncation_direction": "Right"})
    assert_parity(np.array(cut.json(), dtype=np.float32), st_reference(minilm_path, [long_text]))
    assert post(url, "/embed", {"inputs": long_text}).status_code == 400
    assert post(url, "/embed", {"inputs": "x", "normalize": False}).status_code == 400
    assert post(url, "/embed", {"inputs": "x", "prompt_name": "nope"}).status_code == 400
    # Left keeps the end: the same vector as the text's last 254 word tokens on their own.
    ending = "start " * 300 + "word " * 400
    left = post(url, "/embed", {"inputs": ending, "truncate": True,
                                "truncation_direction": "Left"})
    assert left.status_code == 200, left.text
    assert_parity(np.array(left.json(), dtype=np.float32),
                  st_reference(minilm_path, ["word " * 254]))
