"""TEI's (text-embeddings-inference) surface: POST /embed {inputs, normalize, truncate,
truncation_direction, prompt_name} -> a bare array of vectors (its /rerank is with the other
rerank shapes, server/rerank_routes.py). Errors go through server/errors.py."""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response

from runtime.adapters.base import Capability
from runtime.pipeline.embedder import Embedder, EmbeddingResult
from server.config import ServerConfig
from server.inputs import classify_input
from server.models import EMBEDDING, resolve
from server.protocol import TeiEmbedRequest, invalid


async def _keeping_end(emb: Embedder, texts: list[str], req: TeiEmbedRequest
                       ) -> EmbeddingResult:
    """Left truncation: the prompted texts cut here, then embedded as token ids (for a text
    model that is what its text path does, with the other end cut)."""
    if not emb.adapter.can(Capability.TRUNCATE_LEFT):
        raise invalid("truncation_direction 'Left' is available for text models only.",
                   "truncation_direction")
    prompt = emb.prompt_text(req.prompt_name)
    rows = emb.tokenizer.encode_keeping_end([prompt + t for t in texts])
    return await emb.embed_tokens(rows, dimensions=req.dimensions)


async def tei_embed(emb: Embedder, req: TeiEmbedRequest, max_inputs: int) -> np.ndarray:
    if not req.normalize and emb.spec.normalize:
        raise invalid("normalize=false is not available: this model's graph L2-normalises its "
                   "output.", "normalize")
    _, texts = classify_input(req.inputs, max_inputs)
    if req.truncate and req.truncation_direction.lower() == "left":
        result = await _keeping_end(emb, texts, req)
    else:
        result = await emb.embed_texts(texts, truncate=req.truncate,
                                       prompt_name=req.prompt_name, dimensions=req.dimensions)
    vectors = result.vectors
    if req.normalize and not emb.spec.normalize:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def register(app: FastAPI, config: ServerConfig) -> None:
    @app.post("/embed")
    async def embed_route(body: TeiEmbedRequest, request: Request) -> Response:
        emb = resolve(request, body.model, EMBEDDING).embedder
        vectors = await tei_embed(emb, body, config.max_inputs_per_request)
        return Response(orjson.dumps(vectors, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")
