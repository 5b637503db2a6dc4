"""create_app(): the app with its lifespan (load, warm up, close) and its guards; the routes
are registered in server/routes.py."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any, AsyncIterator, Sequence, cast

from fastapi import FastAPI
from starlette import types

from runtime.pipeline.embedder import Embedder
from server import errors, routes
from server.config import ServerConfig
from server.embeddings_route import PATH as EMBEDDINGS_PATH
from server.embeddings_route import EmbeddingsRoute
from server.guards import (ApiKeyMiddleware, ASGIApp, BodyLimitMiddleware,
                           JsonContentTypeMiddleware, Receive, Scope, Send)
from server.lifecycle import Readiness, load_embedders, warm_up
from server.metrics import Metrics, MetricsMiddleware
from server.models import ServedModel, ServedModels
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


def create_app(config: ServerConfig,
               embedder: Embedder | Sequence[Embedder] | None = None) -> FastAPI:
    """The app; it loads every model's artifact at startup unless their embedders (one per
    `config.models`, in order) are handed in."""
    metrics, readiness = Metrics(), Readiness()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        given = [embedder] if isinstance(embedder, Embedder) else list(embedder or [])
        embedders = given or load_embedders(config)
        models = ServedModels([ServedModel(c, e) for c, e in zip(config.models, embedders,
                                                                 strict=True)])
        app.state.models, app.state.embedder = models, models.first.embedder
        for m in models.all:  # every tower's batcher: CLIP's and GME's images too
            metrics.watch(m.name, list(m.embedder.batchers.values()))
        # Warm-up runs while the server already answers /health (alive) and /ready (503).
        warming = asyncio.create_task(warm_up(models.all, readiness,
                                              lambda: app.state.on_fatal()))
        try:
            yield
        finally:
            warming.cancel()
            for emb in embedders:
                await emb.close()

    app = ApplianceApp(title="trt-embed", version=VERSION, lifespan=lifespan)
    app.state.on_fatal = lambda: None  # launch_server makes a failed warm-up end the process
    app.state.metrics, app.state.readiness = metrics, readiness
    errors.install(app)
    _add_guards(app, config, metrics)
    routes.register(app, config, metrics, readiness)
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

    inner: ASGIApp = EmbeddingsRoute(fastapi, metrics=metrics)
    inner = JsonContentTypeMiddleware(BodyLimitMiddleware(inner, config.max_request_bytes))
    if config.api_key:
        inner = ApiKeyMiddleware(inner, config.api_key)
    app.guarded = MetricsMiddleware(inner, metrics, known_paths)
