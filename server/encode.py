"""Response bodies built straight from numpy: no Python float per element.

orjson serialises float32 arrays natively (shortest round-trip repr); base64 is the raw
little-endian float32 bytes, which is what the OpenAI SDKs request by default.
"""

from __future__ import annotations

import base64

import numpy as np
import orjson


def usage(prompt_tokens: int, chunks: int | None = None) -> dict:
    """SGLang 0.5.23's UsageInfo as it serialises (entrypoints/openai/protocol.py): every
    field, None included; `chunks` (chunked long inputs) only where chunking was on."""
    body = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens,
            "completion_tokens": 0, "prompt_tokens_details": None, "reasoning_tokens": 0,
            "completion_tokens_details": None}
    return body if chunks is None else {**body, "chunks": chunks}


def embeddings_body(vectors: np.ndarray, encoding_format: str, model: str,
                    prompt_tokens: int, chunks: int | None = None) -> bytes:
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    if encoding_format == "base64":
        data = [{"object": "embedding", "embedding": base64.b64encode(v.tobytes()).decode(),
                 "index": i} for i, v in enumerate(vectors)]
    else:
        data = [{"object": "embedding", "embedding": v, "index": i}
                for i, v in enumerate(vectors)]
    body = {"object": "list", "data": data, "model": model,
            "usage": usage(prompt_tokens, chunks)}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
