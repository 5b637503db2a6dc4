"""ColBERT (PyLate) parity: the tiny PyLate ColBERT, built and served, against PyLate's
encoding (written out in tests/fixtures/pylate_colbert.py): documents (the default) and
queries (prompt_name "query": [Q] marker, [MASK] expansion to query_length), every token
vector within 1e-5, on TEI's /embed_all and /v1/embeddings' multi-vector form."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.fixtures.pylate_colbert import pylate_encode

TEXTS = [
    "What is the capital of France?",
    "a",
    "The quick brown fox jumps over the lazy dog, again and again!",  # skiplist: , !
    "Ünïcödé façade — naïve café, 中文字符 🙂",
    "Embeddings map text to vectors so that similar meanings land close together. " * 2,
]
ATOL = 1e-5


@pytest.fixture(scope="module")
def documents(heads_paths: dict[str, Path]) -> list[np.ndarray]:
    return pylate_encode(heads_paths["colbert"], TEXTS, is_query=False)


@pytest.fixture(scope="module")
def queries(heads_paths: dict[str, Path]) -> list[np.ndarray]:
    return pylate_encode(heads_paths["colbert"], TEXTS, is_query=True)


def post(url: str, route: str, body: dict) -> Any:
    r = requests.post(url + route, json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def assert_tokens(got: list, want: list[np.ndarray]) -> None:
    assert [np.shape(g) for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=0)


def test_documents_by_default(colbert_server: str, documents: list[np.ndarray]) -> None:
    """A plain request: documents, multi-vector (the model's one output), skiplist dropped."""
    body = post(colbert_server, "/v1/embeddings", {"input": TEXTS, "truncate": True})
    assert_tokens([d["embedding"] for d in body["data"]], documents)
    assert_tokens(post(colbert_server, "/embed_all", {"inputs": TEXTS, "truncate": True}),
                  documents)


def test_queries_are_marked_and_expanded(colbert_server: str, queries: list[np.ndarray],
                                         heads_paths: dict[str, Path]) -> None:
    body = post(colbert_server, "/v1/embeddings", {
        "input": TEXTS, "truncate": True, "prompt_name": "query", "output": "multi_vector"})
    assert_tokens([d["embedding"] for d in body["data"]], queries)
    assert {len(q) for q in queries} == {16}  # every query: query_length vectors
    tei = post(colbert_server, "/embed_all",
               {"inputs": TEXTS, "truncate": True, "prompt_name": "query"})
    assert_tokens(tei, queries)


def test_a_long_query_without_truncate_is_400(colbert_server: str) -> None:
    r = requests.post(colbert_server + "/v1/embeddings",
                      json={"input": "long " * 6, "prompt_name": "query"}, timeout=60)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert "query maximum of 15" in r.json()["error"]["message"]
    r = requests.post(colbert_server + "/embed", json={"inputs": "a"}, timeout=60)
    assert r.status_code == 400 and "it gives multi_vector" in r.json()["error"]["message"]


def test_queries_and_documents_at_once(colbert_server: str, documents: list[np.ndarray],
                                       queries: list[np.ndarray]) -> None:
    asks = [(i % 2 == 0, [i % len(TEXTS), (i * 3 + 1) % len(TEXTS)]) for i in range(16)]

    def ask(job: tuple[bool, list[int]]) -> Any:
        query, pick = job
        return post(colbert_server, "/v1/embeddings", {
            "input": [TEXTS[i] for i in pick], "truncate": True,
            **({"prompt_name": "query"} if query else {})})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, asks))
    for (query, pick), body in zip(asks, answers):
        want = queries if query else documents
        assert_tokens([d["embedding"] for d in body["data"]], [want[i] for i in pick])
