"""Liveness, readiness and metrics: what orchestrators and Prometheus ask (open without the
API key, server/guards.py)."""

from __future__ import annotations

from fastapi import FastAPI, Response

from runtime.errors import NotReadyError
from server.lifecycle import Readiness
from server.metrics import Metrics


def register(app: FastAPI, metrics: Metrics, readiness: Readiness) -> None:
    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/ready")
    async def ready() -> Response:
        if readiness.draining:
            raise NotReadyError("The server is shutting down: finishing in-flight requests.")
        if not readiness.ready:
            raise NotReadyError(f"Warm-up failed: {readiness.error}" if readiness.error
                                else "The model is warming up.")
        return Response(status_code=200)

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)
