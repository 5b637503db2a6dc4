"""The rerank routes on the tiny cross-encoder's real server: SGLang's /v1/rerank, TEI's
/rerank and the Cohere/Jina /v2/rerank shapes, top_n and return_documents, documents spread
over batches and reassembled in order under concurrency, the 400s (the server healthy
after), and each kind of model refusing the other kind's route."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

QUERY = "what is the capital of france?"
DOCS = [f"document {i}: the quick brown fox and a cup of coffee {'rocket ' * (i % 5)}"
        for i in range(20)]


def post(url: str, path: str, **body: Any) -> requests.Response:
    return requests.post(url + path, json=body, timeout=60)


@pytest.fixture(scope="module")
def scores(cross_encoder_server: str) -> dict[str, float]:
    """Each document's score, asked one at a time."""
    return {d: post(cross_encoder_server, "/v1/rerank", query=QUERY,
                    documents=[d]).json()[0]["score"] for d in DOCS}


def test_sglang_shape_sorted_best_first(cross_encoder_server: str,
                                        scores: dict[str, float]) -> None:
    r = post(cross_encoder_server, "/v1/rerank", query=QUERY, documents=DOCS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [set(row) for row in body] == [{"score", "document", "index"}] * len(DOCS)
    assert [row["score"] for row in body] == sorted(scores.values(), reverse=True)
    assert all(row["document"] == DOCS[row["index"]] for row in body)
    assert all(abs(row["score"] - scores[row["document"]]) < 1e-6 for row in body)


def test_put_answers_as_post_with_an_operation_id_each(cross_encoder_server: str) -> None:
    """SGLang takes PUT on /v1/rerank, /encode and /classify too; the spec names each
    method's operation once (FastAPI repeats one id for a two-method route)."""
    body = {"query": QUERY, "documents": DOCS[:3]}
    put = requests.put(cross_encoder_server + "/v1/rerank", json=body, timeout=60)
    assert put.status_code == 200 and put.json() == post(cross_encoder_server, "/v1/rerank",
                                                         **body).json()
    spec = requests.get(cross_encoder_server + "/openapi.json", timeout=60).json()
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for path in ("/v1/rerank", "/encode", "/classify"):
        assert set(spec["paths"][path]) == {"post", "put"}


def test_top_n_and_return_documents(cross_encoder_server: str,
                                    scores: dict[str, float]) -> None:
    body = post(cross_encoder_server, "/v1/rerank", query=QUERY, documents=DOCS, top_n=3,
                return_documents=False).json()
    best = sorted(range(len(DOCS)), key=lambda i: -scores[DOCS[i]])[:3]
    assert [row["index"] for row in body] == best
    assert all(set(row) == {"score", "index"} for row in body)
    assert len(post(cross_encoder_server, "/v1/rerank", query=QUERY, documents=DOCS[:2],
                    top_n=10).json()) == 2


def test_tei_shape(cross_encoder_server: str, scores: dict[str, float]) -> None:
    body = post(cross_encoder_server, "/rerank", query=QUERY, texts=DOCS[:4],
                return_text=True).json()
    assert [set(row) for row in body] == [{"index", "score", "text"}] * 4
    assert [row["score"] for row in body] == sorted((scores[d] for d in DOCS[:4]), reverse=True)
    assert all(row["text"] == DOCS[row["index"]] for row in body)
    bare = post(cross_encoder_server, "/rerank", query=QUERY, texts=DOCS[:2]).json()
    assert all(set(row) == {"index", "score"} for row in bare)


def test_cohere_jina_shape(cross_encoder_server: str, scores: dict[str, float]) -> None:
    r = post(cross_encoder_server, "/v2/rerank", model="m", query=QUERY, top_n=2,
             documents=[DOCS[0], {"text": DOCS[1]}, DOCS[2]], return_documents=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "m" and body["usage"]["total_tokens"] > 0
    best = sorted(range(3), key=lambda i: -scores[DOCS[i]])[:2]
    assert [row["index"] for row in body["results"]] == best
    assert [row["document"] for row in body["results"]] == [{"text": DOCS[i]} for i in best]
    assert [row["relevance_score"] for row in body["results"]] == [scores[DOCS[i]] for i in best]


def test_documents_in_order_under_concurrency(cross_encoder_server: str,
                                              scores: dict[str, float]) -> None:
    """Shuffled requests at once: the batcher mixes and splits them (256-token batches);
    every score must come back on its own document."""
    orders = [random.Random(seed).sample(DOCS, len(DOCS)) for seed in range(8)]

    def ask(docs: list[str]) -> list[dict]:
        return post(cross_encoder_server, "/rerank", query=QUERY, texts=docs).json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, orders))
    for docs, rows in zip(orders, answers):
        assert len(rows) == len(DOCS)
        assert all(abs(row["score"] - scores[docs[row["index"]]]) < 1e-6 for row in rows)


@pytest.mark.parametrize("path, body, param", [
    ("/v1/rerank", {"query": QUERY, "documents": []}, "documents"),
    ("/v1/rerank", {"query": QUERY, "documents": ["x"] * 41}, "documents"),
    ("/v1/rerank", {"query": "  ", "documents": ["x"]}, "query"),
    ("/v1/rerank", {"query": QUERY, "documents": ["x", " "]}, "documents"),
    ("/v1/rerank", {"query": QUERY, "documents": ["x"], "top_n": 0}, "top_n"),
    ("/rerank", {"query": QUERY, "texts": []}, "texts"),
    ("/rerank", {"query": QUERY, "texts": ["long " * 80], "truncate": False}, "documents"),
    ("/v1/rerank", {"query": "long " * 80, "documents": ["x"]}, "query"),
    ("/v2/rerank", {"query": QUERY, "documents": []}, "documents"),
])
def test_bad_requests_are_clear_400s(cross_encoder_server: str, path: str, body: dict,
                                     param: str) -> None:
    r = requests.post(cross_encoder_server + path, json=body, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert requests.get(cross_encoder_server + "/health", timeout=10).status_code == 200
    assert post(cross_encoder_server, "/v1/rerank", query=QUERY,
                documents=["ok"]).status_code == 200


def test_long_document_is_truncated_by_default(cross_encoder_server: str) -> None:
    r = post(cross_encoder_server, "/v1/rerank", query=QUERY, documents=["long " * 80])
    assert r.status_code == 200, r.text


def test_reranker_refuses_embeddings(cross_encoder_server: str) -> None:
    r = post(cross_encoder_server, "/v1/embeddings", input="hello", model="m")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "unsupported_model"
    assert "/v1/rerank" in r.json()["error"]["message"]
    assert requests.get(cross_encoder_server + "/health_generate", timeout=30).status_code == 200


def test_embedder_refuses_rerank(minilm_server: str) -> None:
    r = post(minilm_server, "/v1/rerank", query=QUERY, documents=["x"])
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "unsupported_model"
    assert "embedding model" in r.json()["error"]["message"]


def test_v1_score_gives_sglang_class_logits(cross_encoder_server: str) -> None:
    """SGLang's /v1/score on a sequence-classification model: [[logit]] per item, the same
    logits TEI's raw_scores gives; item_first swaps the pair; apply_softmax over one label."""
    items = DOCS[:3]
    r = post(cross_encoder_server, "/v1/score", query=QUERY, items=items, model="m")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["object"], body["model"]) == ("scoring", "m")
    raw = sorted(post(cross_encoder_server, "/rerank", query=QUERY, texts=items,
                      raw_scores=True).json(), key=lambda row: row["index"])
    assert all(len(row) == 1 for row in body["scores"])
    assert [abs(s[0] - t["score"]) < 1e-5 for s, t in zip(body["scores"], raw)] == [True] * 3
    assert body["usage"]["prompt_tokens"] > 0
    swapped = post(cross_encoder_server, "/v1/score", query=QUERY, items=items,
                   item_first=True).json()["scores"]
    assert max(abs(a[0] - b[0]) for a, b in zip(swapped, body["scores"])) > 1e-4
    assert post(cross_encoder_server, "/v1/score", query=QUERY, items=items,
                apply_softmax=True).json()["scores"] == [[1.0]] * 3
    bad = post(cross_encoder_server, "/v1/score", query=QUERY, items=[])
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "items"
    typed = post(cross_encoder_server, "/v1/score", query=QUERY, items=[[1, 2]])
    assert typed.status_code == 400, typed.text
