"""create_app(): the HTTP routes. Handlers stay short; the Embedder does the work."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any, AsyncIterator, cast

from fastapi import FastAPI, Request, Response
from starlette import types

from runtime.pipeline.embedder import Embedder
from runtime.errors import NotReadyError
from server import compat_routes, errors, rerank_routes
from server.config import ServerConfig
from server.embeddings_route import PATH as EMBEDDINGS_PATH
from server.embeddings_route import EmbeddingsRoute
from server.guards import (ApiKeyMiddleware, ASGIApp, BodyLimitMiddleware,
                           JsonContentTypeMiddleware, Receive, Scope, Send)
from server.lifecycle import Readiness, load_embedder, warm_up
from server.metrics import Metrics, MetricsMiddleware
from server.protocol import REQUEST_SCHEMA


class ApplianceApp(FastAPI):
    """FastAPI with the appliance's guards outside it rather than in its middleware list:
    every HTTP request passes metrics, auth, the JSON check and the body cap first, then
    POST /v1/embeddings is answered (EmbeddingsRoute) without entering FastAPI at all. Its
    own layers (server-error and exception middleware, telemetry, body limit, router) took
    ~10% of the event loop's time per one-sentence request (bench/serving.py, free
    engine); every other route still goes through them."""

    guarded: ASGIApp | None = None  # set once by _add_guards

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, plus POST /v1/embeddings: answered by EmbeddingsRoute, it is
        no FastAPI route, so its operation is written here, from the one request model."""
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"][EMBEDDINGS_PATH] = {"post": {
                "summary": "Embeddings", "operationId": "embeddings", **REQUEST_SCHEMA,
                "responses": {"200": {"description": "Successful Response", "content": {
                    "application/json": {"schema": {}}}}}}}
        return self.openapi_schema or {}

    async def __call__(self, scope: types.Scope, receive: types.Receive,
                       send: types.Send) -> None:
        if scope["type"] == "http" and self.guarded is not None:
            scope["app"] = self
            await self.guarded(cast(Scope, scope), receive, send)
            return
        await super().__call__(scope, receive, send)


VERSION = version("trt-embed")  # pyproject's, as installed


def create_app(config: ServerConfig, embedder: Embedder | None = None) -> FastAPI:
    """The app; it loads the artifact at startup unless an embedder is handed in."""
    metrics, readiness = Metrics(), Readiness()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        emb = embedder or load_embedder(config)
        app.state.embedder = emb
        for batcher in emb.batchers.values():  # every tower's: CLIP's and GME's images too
            batcher.on_batch = metrics.observe_batch
        metrics.watch_queue(lambda: sum(b.queue_rows for b in emb.batchers.values()))
        # Warm-up runs while the server already answers /health (alive) and /ready (503).
        warming = asyncio.create_task(warm_up(emb, readiness, lambda: app.state.on_fatal()))
        try:
            yield
        finally:
            warming.cancel()
            await emb.close()

    app = ApplianceApp(title="trt-embed", version=VERSION, lifespan=lifespan)
    app.state.on_fatal = lambda: None  # launch_server makes a failed warm-up end the process
    app.state.metrics, app.state.readiness = metrics, readiness
    errors.install(app)
    _add_guards(app, config, metrics)
    created = int(time.time())

    @app.get("/ready")
    async def ready() -> Response:
        if readiness.draining:
            raise NotReadyError("The server is shutting down: finishing in-flight requests.")
        if not readiness.ready:
            raise NotReadyError(f"Warm-up failed: {readiness.error}" if readiness.error
                                else "The model is warming up.")
        return Response(status_code=200)

    @app.get("/health_generate")
    async def health_generate(request: Request) -> Response:
        emb: Embedder = request.app.state.embedder
        if emb.spec.is_reranker:  # a real forward pass, of the kind the model serves
            await emb.rerank("health check", ["health check"])
        else:
            await emb.embed_texts(["health check"])
        return Response(status_code=200)

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

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
            "model_path": config.model_path, "tokenizer_path": str(emb.artifact.tokenizer_path),
            "is_generation": False, "preferred_sampling_params": None, "weight_version": None,
            "has_image_understanding": "image" in emb.spec.modalities,
            "has_audio_understanding": False, "model_type": emb.spec.family,
            "architectures": [emb.spec.architecture], "embedding_dim": emb.spec.dims,
            "max_model_len": emb.spec.max_len, "pooling": emb.spec.pooling,
            "normalized": emb.spec.normalize, "matryoshka": emb.spec.matryoshka,
            "backend": emb.backend.name,
        }

    compat_routes.register(app, config)  # SGLang's native routes and TEI's /embed
    rerank_routes.register(app, config)  # /v1/rerank (SGLang), /rerank (TEI), /v2/rerank
    return app


def _add_guards(app: ApplianceApp, config: ServerConfig, metrics: Metrics) -> None:
    """Outermost first: metrics, then auth (401 before any body is read), JSON bodies only
    (415), the body cap, the embeddings fast path, then FastAPI itself."""
    paths: set[str] = set()

    def known_paths() -> set[str]:
        if not paths:  # routes are all declared by the first request
            paths.update([EMBEDDINGS_PATH, *(getattr(r, "path", "") for r in app.routes)])
        return paths

    async def fastapi(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    inner: ASGIApp = EmbeddingsRoute(fastapi, config=config, metrics=metrics)
    inner = JsonContentTypeMiddleware(BodyLimitMiddleware(inner, config.max_request_bytes))
    if config.api_key:
        inner = ApiKeyMiddleware(inner, config.api_key)
    app.guarded = MetricsMiddleware(inner, metrics, known_paths)
