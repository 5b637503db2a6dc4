"""OpenAI's surface: GET /v1/models here; POST /v1/embeddings is answered ahead of FastAPI
(server/embeddings_route.py), its operation documented by server/app.py."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request

from server.models import EMBEDDING, ServedModel, models_of


def model_card(model: ServedModel, created: int) -> dict[str, Any]:
    """One served model as /v1/models lists it: OpenAI's fields, SGLang's max_model_len,
    and what a client picks a model by (kind, vector size, aliases)."""
    spec = model.embedder.spec
    return {"id": model.name, "object": "model", "created": created, "owned_by": "trt-embed",
            "root": model.config.model_path, "max_model_len": spec.max_len,
            "kind": model.kind, "dimensions": spec.dims if model.kind == EMBEDDING else None,
            "aliases": list(model.config.aliases)}


def register(app: FastAPI) -> None:
    created = int(time.time())

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        return {"object": "list", "data": [model_card(m, created)
                                           for m in models_of(request.app.state).all]}
