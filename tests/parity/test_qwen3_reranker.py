"""Qwen3-Reranker parity: the tiny checkpoint, built and served, against its model card's
transformers code (P(yes) over the judging prompt) within 1e-4, default and given
instructions, a document cut to fit, and the query never cut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from models.registry import resolve

QUERY = "What is the capital of France?"
DOCS = [
    "Paris is the capital and largest city of France.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "a",
    "Ünïcödé façade — naïve café, 中文字符 🙂",
    "long " * 300,  # past the 256-token maximum: the document's end is cut
]
INSTRUCT = "Given a question, find the passage that answers it"


def reference(path: Path, instruction: str | None = None) -> np.ndarray:
    from builder.families.qwen3_reranker import reference_pairs

    _, spec = resolve(path)
    return np.asarray(reference_pairs(path, spec, [(QUERY, d) for d in DOCS], instruction))


def scores(url: str, **extra: Any) -> np.ndarray:
    r = requests.post(url + "/v1/rerank", json={"query": QUERY, "documents": DOCS, **extra},
                      timeout=60)
    assert r.status_code == 200, r.text
    return np.array([row["score"] for row in sorted(r.json(), key=lambda x: x["index"])])


def test_default_instruction_matches_the_model_card(qwen3_reranker_server: str,
                                                    reranker_paths: dict[str, Path]) -> None:
    expected = reference(reranker_paths["qwen3_reranker"])
    np.testing.assert_allclose(scores(qwen3_reranker_server), expected, atol=1e-4, rtol=0)
    assert np.ptp(expected) > 0.01  # the tiny model tells documents apart


def test_given_instruction_matches_and_changes_scores(qwen3_reranker_server: str,
                                                      reranker_paths: dict[str, Path]) -> None:
    ours = scores(qwen3_reranker_server, instruct=INSTRUCT)
    expected = reference(reranker_paths["qwen3_reranker"], INSTRUCT)
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)
    assert np.abs(ours - scores(qwen3_reranker_server)).max() > 1e-4


@pytest.mark.parametrize("path, body, param", [
    ("/v1/rerank", {"query": "long " * 300, "documents": ["x"]}, "query"),
    ("/rerank", {"query": QUERY, "texts": ["long " * 300], "truncate": False}, "documents"),
])
def test_over_long_pairs_are_400(qwen3_reranker_server: str, path: str, body: dict,
                                 param: str) -> None:
    r = requests.post(qwen3_reranker_server + path, json=body, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert requests.get(qwen3_reranker_server + "/health_generate", timeout=30).status_code == 200


def test_v1_score_points_to_rerank(qwen3_reranker_server: str) -> None:
    r = requests.post(qwen3_reranker_server + "/v1/score",
                      json={"query": QUERY, "items": ["a"], "label_token_ids": [1, 2]}, timeout=60)
    assert r.status_code == 400 and "/v1/rerank" in r.json()["error"]["message"]
