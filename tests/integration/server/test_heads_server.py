"""Sparse and multi-vector requests the model cannot answer, or that are malformed: 400 with
OpenAI's error body, and the server keeps serving (SPLADE, bge-m3 and the dense MiniLM)."""

from __future__ import annotations

from typing import Any

import pytest
import requests


def assert_400(r: requests.Response, param: str | None, code: str, says: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param,
                                                              code)
    assert says in error["message"], error["message"]


def post(url: str, route: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(url + route, json=body, timeout=60)


@pytest.mark.parametrize(("route", "body", "param", "code", "says"), [
    ("/v1/embeddings", {"input": "a fox", "output": "dense"}, "output", "unsupported_output",
     "no dense output; it gives sparse"),
    ("/v1/embeddings", {"input": "a fox", "output": "multi_vector"}, "output",
     "unsupported_output", "no multi_vector output"),
    ("/v1/embeddings", {"input": "a fox", "output": "colbert"}, "output", "invalid_value",
     "'output' must be one of ['dense', 'sparse', 'multi_vector']"),
    ("/v1/embeddings", {"input": "a fox", "encoding_format": "base64"}, "encoding_format",
     "invalid_value", "sparse output is sent as JSON numbers"),
    ("/v1/embeddings", {"input": "a fox", "dimensions": 8}, "dimensions", "invalid_value",
     "sparse output has none"),
    ("/v1/embeddings", {"input": [{"text": "a fox"}]}, "input", "invalid_value",
     "takes strings or token ids"),
    ("/v1/embeddings", {"input": "long " * 80}, "input", "context_length_exceeded",
     "more than this model's maximum of 64"),
    ("/embed_all", {"inputs": "a fox"}, "output", "unsupported_output",
     "no multi_vector output"),
    ("/embed", {"inputs": "a fox"}, "output", "unsupported_output",
     "POST /embed_sparse"),
    ("/encode", {"text": "a fox"}, "output", "unsupported_output",
     "no dense vectors; it gives sparse"),
])
def test_splade_refusals(splade_server: str, route: str, body: dict[str, Any],
                         param: str | None, code: str, says: str) -> None:
    assert_400(post(splade_server, route, body), param, code, says)
    assert requests.get(splade_server + "/health", timeout=10).status_code == 200
    ok = post(splade_server, "/embed_sparse", {"inputs": "a fox"})
    assert ok.status_code == 200 and ok.json()[0]


def test_bge_m3_refusals(bge_m3_server: str) -> None:
    assert_400(post(bge_m3_server, "/v1/embeddings",
                    {"input": "a fox", "output": "multi_vector", "dimensions": 8}),
               "dimensions", "invalid_value", "multi_vector output has none")
    assert_400(post(bge_m3_server, "/v1/embeddings", {"input": [[0, 5, 99999]],
                                                      "output": "sparse"}),
               "input", "invalid_token_id", "Invalid token id 99999")
    left = post(bge_m3_server, "/embed_all", {"inputs": "long " * 80, "truncate": True,
                                              "truncation_direction": "Left"})
    assert left.status_code == 200 and len(left.json()[0]) == 63  # 64 tokens, less the CLS


def test_a_dense_model_has_no_sparse_or_token_output(minilm_server: str) -> None:
    for output in ("sparse", "multi_vector"):
        assert_400(post(minilm_server, "/v1/embeddings", {"input": "a fox", "output": output}),
                   "output", "unsupported_output", "it gives dense")
    assert_400(post(minilm_server, "/embed_sparse", {"inputs": "a fox"}), "output",
               "unsupported_output", "no sparse output")
    assert_400(post(minilm_server, "/embed_all", {"inputs": ["a fox"]}), "output",
               "unsupported_output", "no multi_vector output")
    dense = post(minilm_server, "/v1/embeddings", {"input": "a fox", "output": "dense"})
    plain = post(minilm_server, "/v1/embeddings", {"input": "a fox"})
    assert dense.status_code == 200 and dense.content == plain.content


def test_a_reranker_has_no_embeddings_of_any_output(cross_encoder_server: str) -> None:
    for route, body in (("/embed_sparse", {"inputs": "a fox"}),
                        ("/embed_all", {"inputs": "a fox"}),
                        ("/v1/embeddings", {"input": "a fox", "output": "multi_vector"})):
        assert_400(post(cross_encoder_server, route, body), "output", "unsupported_output",
                   "This model is a reranker")
    assert_400(post(cross_encoder_server, "/v1/embeddings", {"input": "a fox"}), "model",
               "unsupported_model", "This model is a reranker")
