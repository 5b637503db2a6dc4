"""create_app(): the HTTP routes. Handlers stay short; the Embedder does the work."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request, Response

from runtime.embedder import Embedder
from server import errors
from server.config import ServerConfig
from server.encode import embeddings_body
from server.inputs import classify_input
from server.protocol import REQUEST_SCHEMA, parse_request


def create_app(config: ServerConfig, embedder: Embedder | None = None) -> FastAPI:
    """The app; it loads the artifact at startup unless an embedder is handed in."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        emb = embedder or Embedder.load(config.artifact, config.runtime)
        await emb.start()
        app.state.embedder = emb
        try:
            yield
        finally:
            await emb.close()

    app = FastAPI(title="trt-embed", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    created = int(time.time())

    @app.post("/v1/embeddings", openapi_extra=REQUEST_SCHEMA)
    async def embeddings(request: Request) -> Response:
        # The body is parsed here, whatever the Content-Type: curl -d sends form-encoded.
        body = parse_request(await request.body())
        emb: Embedder = request.app.state.embedder
        kind, items = classify_input(body.input, config.max_inputs_per_request)
        if kind == "tokens":
            result = await emb.embed_tokens(items, truncate=body.truncate,
                                            dimensions=body.dimensions)
        elif kind == "text":
            result = await emb.embed_texts(items, truncate=body.truncate,
                                           prompt_name=body.prompt_name,
                                           dimensions=body.dimensions)
        else:
            result = await emb.embed_items(items, truncate=body.truncate,
                                           prompt_name=body.prompt_name,
                                           dimensions=body.dimensions)
        model = body.model or config.served_model_name
        return Response(embeddings_body(result.vectors, body.encoding_format, model,
                                        result.prompt_tokens), media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        spec = request.app.state.embedder.spec
        return {"object": "list", "data": [{
            "id": config.served_model_name, "object": "model", "created": created,
            "owned_by": "trt-embed", "root": config.model_path, "max_model_len": spec.max_len,
        }]}

    @app.get("/get_model_info")
    async def model_info(request: Request) -> dict:
        emb: Embedder = request.app.state.embedder
        return {
            "model_path": config.model_path, "tokenizer_path": str(emb.artifact / "tokenizer.json"),
            "is_generation": False, "preferred_sampling_params": None, "weight_version": None,
            "has_image_understanding": "image" in emb.spec.modalities,
            "has_audio_understanding": False, "model_type": emb.spec.family,
            "architectures": [emb.spec.architecture], "embedding_dim": emb.spec.dims,
            "max_model_len": emb.spec.max_len, "pooling": emb.spec.pooling,
            "normalized": emb.spec.normalize, "matryoshka": emb.spec.matryoshka,
            "backend": emb.backend.name,
        }

    return app
