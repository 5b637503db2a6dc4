"""Response bodies built straight from numpy: no Python float per element.

orjson serialises float32 arrays natively (shortest round-trip repr); base64 is the raw
little-endian float32 bytes, which is what the OpenAI SDKs request by default.
"""

from __future__ import annotations

import base64

import numpy as np
import orjson


def usage(prompt_tokens: int) -> dict:
    """SGLang 0.5.23's UsageInfo as it serialises (entrypoints/openai/protocol.py): every
    field, None included."""
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens,
            "completion_tokens": 0, "prompt_tokens_details": None, "reasoning_tokens": 0,
            "completion_tokens_details": None}


def embeddings_body(vectors: np.ndarray, encoding_format: str, model: str,
                    prompt_tokens: int) -> bytes:
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    if encoding_format == "base64":
        data = [{"object": "embedding", "embedding": base64.b64encode(v.tobytes()).decode(),
                 "index": i} for i, v in enumerate(vectors)]
    else:
        data = [{"object": "embedding", "embedding": v, "index": i}
                for i, v in enumerate(vectors)]
    body = {"object": "list", "data": data, "model": model,
            "usage": usage(prompt_tokens)}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
