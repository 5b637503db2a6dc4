"""Quantized /v1/embeddings answers: OpenAI's `encoding_format` and Cohere's `embedding_types`.

- `encoding_format` "float" / "base64" alone: the float path of server/encode.py, untouched.
- `encoding_format` "int8", "uint8", "binary" or "ubinary": `embedding` is that type's list
  of integers (OpenAI's shape, another element type).
- `embedding_types` [types]: `embedding` is an object with one key per listed type
  (Cohere's `embeddings` object, per item); with `encoding_format` "base64" each value is
  the base64 of its raw bytes (float: little-endian float32; the others: one byte each).
The types are runtime/quantization.py's; `dimensions` applies first (the pipeline's).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import orjson

from runtime.quantization import Quantizer
from server.encode import usage
from server.protocol import EmbeddingRequest, invalid

PLAIN = ("float", "base64")


@dataclass(frozen=True)
class OutputForm:
    kinds: tuple[str, ...]  # the types, in the request's order
    base64: bool  # each value as base64 of its bytes
    keyed: bool  # `embedding` is {type: value} (embedding_types), else the one type's value

    @property
    def param(self) -> str:
        return "embedding_types" if self.keyed else "encoding_format"


def output_form(request: EmbeddingRequest) -> OutputForm | None:
    """The request's output types; None: plain float or base64 (server/encode.py)."""
    fmt, types = request.encoding_format, request.embedding_types
    if types is None:
        return None if fmt in PLAIN else OutputForm((fmt,), False, False)
    if fmt not in PLAIN:
        raise invalid(f"'encoding_format' {fmt!r} names a type, and so does "
                      "'embedding_types': send the types in 'embedding_types' with "
                      "'encoding_format' float or base64.", "encoding_format")
    if not types:
        raise invalid("'embedding_types' must list at least one type.", "embedding_types")
    return OutputForm(tuple(dict.fromkeys(types)), fmt == "base64", True)


def quantized_body(vectors: np.ndarray, form: OutputForm, quantizer: Quantizer, model: str,
                   prompt_tokens: int, chunks: int | None = None) -> bytes:
    arrays = {kind: quantizer.apply(vectors, kind) for kind in form.kinds}
    if form.base64:  # float as little-endian float32, as the float path's base64
        arrays = {kind: a.astype("<f4") if a.dtype == np.float32 else a
                  for kind, a in arrays.items()}
        values = {kind: [base64.b64encode(row.tobytes()).decode() for row in a]
                  for kind, a in arrays.items()}
    else:
        values = {kind: list(a) for kind, a in arrays.items()}
    if form.keyed:
        embeddings: list = [{kind: values[kind][i] for kind in form.kinds}
                            for i in range(len(vectors))]
    else:
        embeddings = values[form.kinds[0]]
    data = [{"object": "embedding", "embedding": e, "index": i}
            for i, e in enumerate(embeddings)]
    body = {"object": "list", "data": data, "model": model,
            "usage": usage(prompt_tokens, chunks)}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
