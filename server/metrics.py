"""Prometheus metrics, one registry per app (tests build several apps in one process).

Requests are counted by an outer ASGI middleware, so every answer - 401, 413, 429, a
client that hung up - is seen with its real status; the batcher reports each backend
run through its `on_batch` hook.
"""

from __future__ import annotations

import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from server.guards import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384, 65536)
# A client that disconnected before its answer: nginx's convention, never sent on the wire.
CLIENT_CLOSED = 499


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("trt_embed_requests", "HTTP requests by route and status",
                                ["path", "status"], registry=r)
        self.latency = Histogram("trt_embed_request_seconds", "HTTP request latency",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("trt_embed_requests_in_flight", "HTTP requests being served",
                               registry=r)
        self.queue_rows = Gauge("trt_embed_queue_rows", "inputs waiting for the backend",
                                registry=r)
        self.batch_rows = Histogram("trt_embed_batch_rows", "inputs per backend call",
                                    buckets=SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("trt_embed_batch_padded_tokens",
                                      "padded tokens per backend call",
                                      buckets=TOKEN_BUCKETS, registry=r)
        self.backend_seconds = Histogram("trt_embed_backend_seconds", "time per backend call",
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("trt_embed_prompt_tokens", "tokens embedded for clients",
                                     registry=r)
        self.disconnects = Counter("trt_embed_client_disconnects",
                                   "requests whose client left before the answer; their "
                                   "queued inputs were dropped", registry=r)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_rows.set_function(depth)

    def observe_batch(self, rows: int, padded_tokens: int, seconds: float) -> None:
        self.batch_rows.observe(rows)
        self.batch_tokens.observe(padded_tokens)
        self.backend_seconds.observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Outermost layer: status and latency of every HTTP request, by route path."""

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: Callable[[], set[str]]):
        self.app = app
        self.metrics = metrics
        self._paths = paths  # known route paths; anything else is "other" (bounded labels)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"] if scope["path"] in self._paths() else "other"
        status = CLIENT_CLOSED

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        except Exception:
            status = 500
            raise
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)
