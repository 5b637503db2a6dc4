"""The rerank routes' pure rules: SGLang's request checks, the document cap, the ranking."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.errors import InvalidRequestError
from server.rerank_routes import check_request, ranked


@pytest.mark.parametrize("query, documents, top_n, param, words", [
    ("", ["a"], None, "query", "empty"),
    (" \n", ["a"], None, "query", "whitespace"),
    ("q", [], None, "documents", "cannot be empty"),
    ("q", ["a"] * 4, None, "documents", "At most 3"),
    ("q", ["a", "\t"], None, "documents", "documents[1]"),
    ("q", ["a"], 0, "top_n", "at least 1"),
])
def test_bad_requests(query: str, documents: list[str], top_n: int | None, param: str,
                      words: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_request(query, documents, top_n, max_documents=3)
    assert info.value.param == param and words in info.value.message
    assert info.value.status == 400


def test_good_request_passes() -> None:
    check_request("q", ["a", "b", "c"], 5, max_documents=3)


def test_ranked_best_first_ties_in_input_order_top_n() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9], dtype=np.float32)
    assert ranked(scores, None) == [1, 3, 2, 0]
    assert ranked(scores, 2) == [1, 3]
    assert ranked(scores, 10) == [1, 3, 2, 0]
