"""OpenAI's surface: GET /v1/models here; POST /v1/embeddings is answered ahead of FastAPI
(server/embeddings_route.py), its operation documented by server/app.py."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request

from server.config import ServerConfig


def register(app: FastAPI, config: ServerConfig) -> None:
    created = int(time.time())

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        spec = request.app.state.embedder.spec
        return {"object": "list", "data": [{
            "id": config.served_model_name, "object": "model", "created": created,
            "owned_by": "trt-embed", "root": config.model_path, "max_model_len": spec.max_len,
        }]}
