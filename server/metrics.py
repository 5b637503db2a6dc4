"""Prometheus metrics, one registry per app (tests build several apps in one process).

Requests are counted by an outer ASGI middleware, so every answer - 401, 413, 429, a
client that hung up - is seen with its real status; the batcher reports each backend
run through its `on_batch` hook.

Every series but the in-flight gauge carries a `model` label (issue 29): the served name
of the model the request was routed to (server/models.py puts it on the ASGI scope), ""
for requests that reached none (probes, 401/404/415s, a body that did not parse). The
in-flight gauge is counted as a request arrives, before its body names a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from runtime.pipeline.batcher import Batcher
from server.guards import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384, 65536)
SCOPE_KEY = "trt_embed.model"  # where server/models.py puts the routed model's name
# A client that disconnected before its answer: nginx's convention, never sent on the wire.
CLIENT_CLOSED = 499


@dataclass(frozen=True)
class ModelSeries:
    prompt_tokens: Counter
    disconnects: Counter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("trt_embed_requests", "HTTP requests by route and status",
                                ["path", "status", "model"], registry=r)
        self.latency = Histogram("trt_embed_request_seconds", "HTTP request latency",
                                 ["path", "model"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("trt_embed_requests_in_flight", "HTTP requests being served",
                               registry=r)
        model = ["model"]
        self.queue_rows = Gauge("trt_embed_queue_rows", "inputs waiting for the backend",
                                model, registry=r)
        self.batch_rows = Histogram("trt_embed_batch_rows", "inputs per backend call",
                                    model, buckets=SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("trt_embed_batch_padded_tokens",
                                      "padded tokens per backend call", model,
                                      buckets=TOKEN_BUCKETS, registry=r)
        self.backend_seconds = Histogram("trt_embed_backend_seconds", "time per backend call",
                                         model, buckets=LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("trt_embed_prompt_tokens", "tokens embedded for clients",
                                     model, registry=r)
        self.disconnects = Counter("trt_embed_client_disconnects",
                                   "requests whose client left before the answer; their "
                                   "queued inputs were dropped", model, registry=r)
        self._models: dict[str, ModelSeries] = {}

    def model(self, name: str) -> "ModelSeries":
        """The per-request series of one model, labelled once (the embeddings fast path
        counts into them on every request)."""
        series = self._models.get(name)
        if series is None:
            series = self._models[name] = ModelSeries(self.prompt_tokens.labels(name),
                                                      self.disconnects.labels(name))
        return series

    def watch(self, model: str, batchers: Sequence[Batcher]) -> None:
        """One served model's batchers (every tower's): queue depth and each backend run."""
        self.queue_rows.labels(model).set_function(lambda: sum(b.queue_rows for b in batchers))
        rows, tokens = self.batch_rows.labels(model), self.batch_tokens.labels(model)
        seconds = self.backend_seconds.labels(model)

        def observe_batch(n: int, padded_tokens: int, took: float) -> None:
            rows.observe(n)
            tokens.observe(padded_tokens)
            seconds.observe(took)

        for batcher in batchers:
            batcher.on_batch = observe_batch

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
            model = scope.get(SCOPE_KEY, "")  # set where the request was routed to a model
            self.metrics.requests.labels(path, str(status), model).inc()
            self.metrics.latency.labels(path, model).observe(time.perf_counter() - started)
