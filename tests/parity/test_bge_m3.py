"""bge-m3 parity: the tiny bge-m3 (XLM-R + colbert_linear.pt + sparse_linear.pt), built and
served, against FlagEmbedding's BGEM3 computation (written out in tests/fixtures/flag_m3.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.fixtures.flag_m3 import flag_m3

TEXTS = [
    "What is the capital of France?",
    "a",
    "The quick brown fox jumps over the lazy dog. The fox.",  # "fox" twice: the max weight
    "Ünïcödé façade — naïve café, 中文字符 🙂",
    "Embeddings map text to vectors so that similar meanings land close together. " * 3,
    "long " * 80,  # past the 64-token maximum: cut with truncate
]
ATOL = 1e-5


@pytest.fixture(scope="module")
def reference(heads_paths: dict[str, Path]) -> dict[str, Any]:
    return flag_m3(heads_paths["bge_m3"], TEXTS)


def post(url: str, route: str, body: dict) -> Any:
    r = requests.post(url + route, json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def assert_lexical(indices: list[int], values: list[float], want: dict[str, float]) -> None:
    assert [str(i) for i in indices] == sorted(want, key=int)
    np.testing.assert_allclose(values, [want[str(i)] for i in indices], atol=ATOL, rtol=0)


def test_dense_is_the_normalised_cls(bge_m3_server: str, reference: dict[str, Any]) -> None:
    """A plain request is dense (byte for byte the same as `"output": "dense"`)."""
    plain = requests.post(bge_m3_server + "/v1/embeddings",
                          json={"input": TEXTS, "truncate": True}, timeout=60)
    asked = requests.post(bge_m3_server + "/v1/embeddings",
                          json={"input": TEXTS, "truncate": True, "output": "dense"}, timeout=60)
    assert plain.status_code == 200 and plain.content == asked.content
    vectors = np.array([d["embedding"] for d in plain.json()["data"]])
    np.testing.assert_allclose(vectors, reference["dense_vecs"], atol=ATOL, rtol=0)


def test_sparse_lexical_weights(bge_m3_server: str, reference: dict[str, Any]) -> None:
    body = post(bge_m3_server, "/v1/embeddings",
                {"input": TEXTS, "truncate": True, "output": "sparse"})
    for item, want in zip(body["data"], reference["lexical_weights"]):
        assert_lexical(item["embedding"]["indices"], item["embedding"]["values"], want)
    tei = post(bge_m3_server, "/embed_sparse", {"inputs": TEXTS, "truncate": True})
    for row, want in zip(tei, reference["lexical_weights"]):
        assert_lexical([e["index"] for e in row], [e["value"] for e in row], want)
    assert any(len(w) > 1 for w in reference["lexical_weights"])


def test_colbert_vectors(bge_m3_server: str, reference: dict[str, Any]) -> None:
    """Every token after the first, padding removed, in order, normalised: on
    /v1/embeddings (output multi_vector) and TEI's /embed_all alike."""
    body = post(bge_m3_server, "/v1/embeddings",
                {"input": TEXTS, "truncate": True, "output": "multi_vector"})
    tei = post(bge_m3_server, "/embed_all", {"inputs": TEXTS, "truncate": True})
    for item, row, want in zip(body["data"], tei, reference["colbert_vecs"]):
        assert np.shape(item["embedding"]) == np.shape(row) == want.shape
        np.testing.assert_allclose(item["embedding"], want, atol=ATOL, rtol=0)
        np.testing.assert_allclose(row, want, atol=ATOL, rtol=0)
    assert len({len(w) for w in reference["colbert_vecs"]}) > 3  # lengths differ: padding


def test_mixed_outputs_at_once_match_their_inputs(bge_m3_server: str,
                                                  reference: dict[str, Any]) -> None:
    """Dense, sparse and multi-vector requests of different texts at once (one batcher):
    each answer is its own text's and its own output's."""
    outputs = ("dense", "sparse", "multi_vector")
    asks = [(outputs[i % 3], [i % len(TEXTS), (i * 5 + 2) % len(TEXTS)]) for i in range(24)]

    def ask(job: tuple[str, list[int]]) -> Any:
        output, pick = job
        return post(bge_m3_server, "/v1/embeddings",
                    {"input": [TEXTS[i] for i in pick], "truncate": True, "output": output})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, asks))
    for (output, pick), body in zip(asks, answers):
        for i, item in zip(pick, body["data"]):
            got = item["embedding"]
            if output == "dense":
                np.testing.assert_allclose(got, reference["dense_vecs"][i], atol=ATOL)
            elif output == "sparse":
                assert_lexical(got["indices"], got["values"], reference["lexical_weights"][i])
            else:
                np.testing.assert_allclose(got, reference["colbert_vecs"][i], atol=ATOL)
