"""Reranking routes, in the three shapes clients post:

- SGLang 0.5.23 `POST`/`PUT /v1/rerank` (entrypoints/openai/protocol.py V1RerankReqInput,
  serving_rerank.py): {query, documents, instruct, top_n, return_documents} -> a bare list
  of {score, document?, index}, best first, cut to top_n.
- TEI `POST /rerank`: {query, texts, raw_scores, return_text, truncate} -> a bare list of
  {index, score, text?}, best first.
- Cohere/Jina `POST /v2/rerank` (what LangChain's and LlamaIndex's Cohere and Jina
  rerankers read): {model, query, documents (strings or {text}), top_n, return_documents}
  -> {id, model, results: [{index, relevance_score, document?: {text}}], usage, meta}.
  SGLang owns /v1/rerank with its bare list, which cannot carry a `results` key, so these
  clients are pointed at /v2/rerank (Cohere's v2 path; README).

Every shape runs Embedder.rerank: documents spread over the token-budget batches and come
back in order. Errors go through server/errors.py like every other route.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable, Sequence

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from runtime.pipeline.embedder import Embedder, RerankResult
from server.config import ServerConfig
from server.models import RERANK, resolve
from server.protocol import (CohereRerankRequest, ScoreRequest, SglangRerankRequest,
                             TeiRerankRequest, invalid)


def check_request(query: str, documents: Sequence[str], top_n: int | None, max_documents: int,
                  field: str = "documents") -> None:
    """SGLang's rules (serving_rerank.py _validate_request, the top_n validator) and the
    server's document cap: each broken rule a 400 naming the field."""
    if not query.strip():
        raise invalid("Query cannot be empty or whitespace only.", "query")
    if not documents:
        raise invalid(f"'{field}' cannot be empty.", field)
    if len(documents) > max_documents:
        raise invalid(f"At most {max_documents} documents are allowed per request, got "
                   f"{len(documents)} (--max-rerank-documents).", field)
    blank = next((i for i, d in enumerate(documents) if not d.strip()), None)
    if blank is not None:
        raise invalid(f"{field}[{blank}] is empty or whitespace only.", field)
    if top_n is not None and top_n < 1:
        raise invalid("top_n must be at least 1.", "top_n")


def ranked(scores: np.ndarray, top_n: int | None) -> list[int]:
    """Document indices, best score first (ties: input order), the first top_n."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # stable
    return order if top_n is None else order[:top_n]


async def score(emb: Embedder, config: ServerConfig, query: str, documents: list[str],
                top_n: int | None, truncate: bool | None = None, raw_scores: bool = False,
                field: str = "documents", instruct: str | None = None
                ) -> tuple[RerankResult, list[int]]:
    check_request(query, documents, top_n, config.max_rerank_documents, field)
    cut = config.rerank_truncate if truncate is None else truncate
    result = await emb.rerank(query, documents, truncate=cut, raw_scores=raw_scores,
                              instruct=instruct)
    return result, ranked(result.scores, top_n)


def score_request(body: bytes) -> ScoreRequest:
    """/v1/score's body, parsed before its model is known (the route resolves `model`)."""
    try:
        return ScoreRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


async def v1_score(emb: Embedder, config: ServerConfig, req: ScoreRequest) -> dict[str, Any]:
    """SGLang's /v1/score on a sequence-classification model: the class logits per item,
    [[logit], ...] (softmaxed over the labels with apply_softmax: 1.0 for one label, as
    there). Each (query, item) is a pair through the model's pair template, as
    CrossEncoder scores it (SGLang tokenises the string query + item as one text)."""
    items = [req.items] if isinstance(req.items, str) else req.items
    check_request(req.query, items, None, config.max_rerank_documents, "items")
    cut = config.rerank_truncate
    if req.item_first:  # each item is the first text of its own pair: a call per item
        results = await asyncio.gather(*(emb.rerank(item, [req.query], truncate=cut,
                                                    raw_scores=True) for item in items))
        raw = [float(r.scores[0]) for r in results]
        tokens = sum(r.prompt_tokens for r in results)
    else:
        result = await emb.rerank(req.query, items, truncate=cut, raw_scores=True)
        raw, tokens = [float(x) for x in result.scores], result.prompt_tokens
    logits = [[1.0 if req.apply_softmax else x] for x in raw]
    return {"scores": logits, "model": req.model or config.served_model_name,
            "object": "scoring", "usage": {"prompt_tokens": tokens, "total_tokens": tokens,
                                           "completion_tokens": 0}}


def post_and_put(app: FastAPI, path: str, endpoint: Callable[..., Any]) -> None:
    """SGLang's routes that take POST and PUT alike: a route per method, so the OpenAPI
    spec gives each its own operation id (one route with both methods repeats one)."""
    for method in ("POST", "PUT"):
        app.add_api_route(path, endpoint, methods=[method],
                          operation_id=f"{endpoint.__name__}_{method.lower()}")


def register(app: FastAPI) -> None:
    """Each route finds its model (server.models.resolve; without `model`: the first
    reranker served) and answers with that model's config."""
    async def sglang_rerank(body: SglangRerankRequest, request: Request) -> list[dict]:
        served = resolve(request, body.model, RERANK)
        result, order = await score(served.embedder, served.config, body.query,
                                    body.documents, body.top_n, instruct=body.instruct)
        return [{"score": float(result.scores[i]), "index": i,
                 **({"document": body.documents[i]} if body.return_documents else {})}
                for i in order]

    post_and_put(app, "/v1/rerank", sglang_rerank)

    @app.post("/rerank")
    async def tei_rerank(body: TeiRerankRequest, request: Request) -> list[dict]:
        served = resolve(request, body.model, RERANK)
        result, order = await score(served.embedder, served.config, body.query, body.texts,
                                    None, body.truncate, body.raw_scores, "texts")
        return [{"index": i, "score": float(result.scores[i]),
                 **({"text": body.texts[i]} if body.return_text else {})} for i in order]

    @app.post("/v2/rerank")
    async def cohere_rerank(body: CohereRerankRequest, request: Request) -> dict[str, Any]:
        served = resolve(request, body.model, RERANK)
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        result, order = await score(served.embedder, served.config, body.query, texts,
                                    body.top_n)
        results = [{"index": i, "relevance_score": float(result.scores[i]),
                    **({"document": {"text": texts[i]}} if body.return_documents else {})}
                   for i in order]
        tokens = {"total_tokens": result.prompt_tokens}
        return {"id": uuid.uuid4().hex, "model": body.model or served.config.served_model_name,
                "results": results, "usage": tokens,
                "meta": {"billed_units": {"search_units": 1}, "tokens": {
                    "input_tokens": result.prompt_tokens}}}
