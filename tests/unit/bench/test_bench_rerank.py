"""The rerank bench's request plan: each query with the 32 sentences after it, wrapping."""

from __future__ import annotations

from bench.rerank import DOCS_PER_QUERY, requests_of


def test_each_query_gets_the_following_sentences() -> None:
    sentences = [f"s{i}" for i in range(40)]
    asks = requests_of(sentences, 10)
    assert [q for q, _ in asks] == sentences[:10]
    assert all(len(docs) == DOCS_PER_QUERY and q not in docs for q, docs in asks)
    assert asks[9][1][0] == "s10" and asks[9][1][-1] == "s1"  # wraps past the end
