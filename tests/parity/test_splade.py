"""SPLADE parity: the tiny SPLADE checkpoint, built and served, against sentence-transformers'
SparseEncoder: the same nonzero vocabulary entries and their weights within 1e-5, through
TEI's /embed_sparse and /v1/embeddings' sparse form, text or token ids, concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

TEXTS = [
    "What is the capital of France?",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé façade — naïve café, 中文字符 🙂",
    "Embeddings map text to vectors so that similar meanings land close together. " * 3,
    "long " * 80,  # past the 64-token maximum: cut with truncate
    "A photo of an astronaut, a cat, a cup of coffee and a rocket.",
]
ATOL = 1e-5


@pytest.fixture(scope="module")
def reference(heads_paths: dict[str, Path]) -> np.ndarray:
    """SparseEncoder.encode, densified: (texts, vocabulary) weights."""
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(str(heads_paths["splade"]), device="cpu")
    return model.encode(TEXTS, convert_to_tensor=True).to_dense().numpy()


def assert_sparse(indices: list[int], values: list[float], want: np.ndarray) -> None:
    nonzero = np.flatnonzero(want)
    assert len(nonzero) > 0
    np.testing.assert_array_equal(indices, nonzero)
    np.testing.assert_allclose(values, want[nonzero], atol=ATOL, rtol=0)


def test_embed_sparse_matches_sparse_encoder(splade_server: str, reference: np.ndarray) -> None:
    r = requests.post(splade_server + "/embed_sparse",
                      json={"inputs": TEXTS, "truncate": True}, timeout=60)
    assert r.status_code == 200, r.text
    rows = r.json()
    assert len(rows) == len(TEXTS)
    for row, want in zip(rows, reference):
        assert_sparse([e["index"] for e in row], [e["value"] for e in row], want)
    assert 0 < np.count_nonzero(reference) < reference.size  # sparse, and not empty


def test_v1_embeddings_answers_sparse_by_default(splade_server: str, reference: np.ndarray,
                                                 heads_paths: dict[str, Path]) -> None:
    """A SPLADE model's one output is sparse: a plain request gets {indices, values}, the
    same as `"output": "sparse"`, with exact token counts."""
    from transformers import AutoTokenizer

    plain = requests.post(splade_server + "/v1/embeddings",
                          json={"input": TEXTS, "truncate": True}, timeout=60)
    asked = requests.post(splade_server + "/v1/embeddings",
                          json={"input": TEXTS, "truncate": True, "output": "sparse"}, timeout=60)
    assert plain.status_code == asked.status_code == 200, plain.text
    assert plain.content == asked.content
    body = plain.json()
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    for item, want in zip(body["data"], reference):
        assert set(item["embedding"]) == {"indices", "values"}
        assert_sparse(item["embedding"]["indices"], item["embedding"]["values"], want)
    tokenizer = AutoTokenizer.from_pretrained(str(heads_paths["splade"]))
    counts = [len(tokenizer(t, truncation=True, max_length=64)["input_ids"]) for t in TEXTS]
    assert body["usage"]["prompt_tokens"] == sum(counts)


def test_token_ids_embed_as_their_text(splade_server: str, reference: np.ndarray,
                                       heads_paths: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(heads_paths["splade"]))
    ids = [tokenizer(t)["input_ids"] for t in TEXTS[:4]]
    r = requests.post(splade_server + "/v1/embeddings", json={"input": ids}, timeout=60)
    assert r.status_code == 200, r.text
    for item, want in zip(r.json()["data"], reference):
        assert_sparse(item["embedding"]["indices"], item["embedding"]["values"], want)


def test_concurrent_requests_get_their_own_weights(splade_server: str,
                                                   reference: np.ndarray) -> None:
    """Requests of different texts at once (batched together): each answer is its own."""
    picks = [[i % len(TEXTS), (i * 3 + 1) % len(TEXTS)] for i in range(24)]

    def ask(pick: list[int]) -> list[list[dict]]:
        r = requests.post(splade_server + "/embed_sparse",
                          json={"inputs": [TEXTS[i] for i in pick], "truncate": True},
                          timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, picks))
    for pick, rows in zip(picks, answers):
        for i, row in zip(pick, rows):
            assert_sparse([e["index"] for e in row], [e["value"] for e in row], reference[i])
