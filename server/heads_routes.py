"""Sparse and multi-vector answers (runtime/pipeline/heads.py): TEI's POST /embed_sparse
(a list of {index, value} per input) and /embed_all (each input's token vectors), and the
`output` field of POST /v1/embeddings, whose `embedding` is then {indices, values} (sparse)
or a list of token vectors (multi_vector). Errors go through server/errors.py."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from runtime.adapters.base import Capability
from runtime.adapters.heads import Output, SparseVector
from runtime.pipeline.embedder import Embedder
from runtime.pipeline.heads import HeadsResult, embed_output, resolve_output
from server.encode import usage
from server.inputs import classify_input
from server.models import EMBEDDING, resolve
from server.protocol import EmbeddingRequest, TeiTokensRequest, invalid

NUMPY = orjson.OPT_SERIALIZE_NUMPY


async def embed_request(emb: Embedder, kind: str, items: list[Any], request: EmbeddingRequest,
                        output: Output) -> HeadsResult:
    """/v1/embeddings with a sparse or multi-vector `output`: strings or token ids."""
    if request.encoding_format != "float":
        raise invalid(f"encoding_format {request.encoding_format!r} is for dense vectors; "
                      f"{output.value} output is sent as JSON numbers (float).",
                      "encoding_format")
    if request.embedding_types is not None:
        raise invalid(f"'embedding_types' quantize dense vectors; {output.value} output is "
                      "sent as JSON numbers.", "embedding_types")
    if request.chunking:
        raise invalid(f"'chunking' pools dense vectors; {output.value} output has none.",
                      "chunking")
    if request.dimensions is not None:
        raise invalid(f"'dimensions' shortens dense vectors; {output.value} output has none.",
                      "dimensions")
    if kind == "items":
        raise invalid(f"{output.value} output takes strings or token ids as input.", "input")
    return await embed_output(emb, items, output, tokens=kind == "tokens",
                              truncate=request.truncate, prompt_name=request.prompt_name)


def _embedding(row: Any) -> Any:
    if isinstance(row, SparseVector):
        return {"indices": row.indices, "values": row.values}
    return row  # a (tokens, dims) array: a list of token vectors


def openai_body(result: HeadsResult, model: str) -> bytes:
    data = [{"object": "embedding", "embedding": _embedding(row), "index": i}
            for i, row in enumerate(result.rows)]
    return orjson.dumps({"object": "list", "data": data, "model": model,
                         "usage": usage(result.prompt_tokens)}, option=NUMPY)


async def tei_output(emb: Embedder, req: TeiTokensRequest, output: Output,
                     max_inputs: int) -> HeadsResult:
    """TEI's request shape -> `output`; left truncation keeps each text's end."""
    resolve_output(emb, output.value)
    _, texts = classify_input(req.inputs, max_inputs)
    if req.truncate and req.truncation_direction.lower() == "left":
        if not emb.adapter.can(Capability.TRUNCATE_LEFT):
            raise invalid("truncation_direction 'Left' is available for text models only.",
                          "truncation_direction")
        prompt = emb.prompt_text(req.prompt_name)
        rows = emb.tokenizer.encode_keeping_end([prompt + t for t in texts])
        return await embed_output(emb, rows, output, tokens=True, prompt_name=req.prompt_name)
    return await embed_output(emb, texts, output, truncate=req.truncate,
                              prompt_name=req.prompt_name)


def sparse_body(result: HeadsResult) -> bytes:
    """TEI's [[{"index", "value"}, ...], ...]."""
    return orjson.dumps([[{"index": i, "value": v}  # v: numpy float32, its shortest repr
                          for i, v in zip(row.indices.tolist(), row.values)]
                         for row in result.rows], option=NUMPY)


def register(app: FastAPI) -> None:
    @app.post("/embed_sparse")
    async def embed_sparse(body: TeiTokensRequest, request: Request) -> Response:
        served = resolve(request, body.model, EMBEDDING)
        result = await tei_output(served.embedder, body, Output.SPARSE,
                                  served.config.max_inputs_per_request)
        return Response(sparse_body(result), media_type="application/json")

    @app.post("/embed_all")
    async def embed_all(body: TeiTokensRequest, request: Request) -> Response:
        served = resolve(request, body.model, EMBEDDING)
        result = await tei_output(served.embedder, body, Output.MULTI_VECTOR,
                                  served.config.max_inputs_per_request)
        return Response(orjson.dumps(result.rows, option=NUMPY), media_type="application/json")
