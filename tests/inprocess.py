"""A real uvicorn server in a thread around a real Embedder whose backend can be held.

Holding the backend (a gate in front of the real ONNX Runtime backend) makes overload,
queue waits, disconnects and readiness deterministic: while the gate is shut, whatever a
client gets back cannot have come from the model, so no timing assertion is needed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import uvicorn
from fastapi import FastAPI

from runtime.backends.base import Backend
from runtime.pipeline.limits import BatchFlags
from runtime.config import RuntimeConfig
from runtime.artifact import Artifact
from runtime.pipeline.choose import load_backend
from runtime.pipeline.embedder import Embedder
from server.app import create_app
from server.config import ServerConfig
from tests.helpers import free_port


class GatedBackend:
    """The real backend behind a gate; `entered` is set once a batch is waiting at it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.limits = inner.limits
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        self.entered.set()
        if not self.gate.wait(60):
            raise TimeoutError("test gate never opened")
        return self.inner.embed(feeds)

    def close(self) -> None:
        self.inner.close()


def gated_embedder(artifact: Path, runtime: RuntimeConfig) -> tuple[Embedder, GatedBackend]:
    opened = Artifact.open(artifact)
    backend = GatedBackend(load_backend(opened, runtime, "text"))
    return Embedder(opened, runtime, {"text": backend}), backend


def server_config(artifact: Path, batch: BatchFlags | None = None,
                  runtime: dict[str, Any] | None = None,
                  **fields: Any) -> ServerConfig:
    rt = RuntimeConfig(batch=batch or BatchFlags(), threads=1, **(runtime or {}))
    return ServerConfig(artifact=Artifact.open(artifact), model_path=str(artifact), served_model_name="m",
                        runtime=rt, **fields)


@contextlib.contextmanager
def serve(config: ServerConfig, embedder: Embedder | Sequence[Embedder] | None = None
          ) -> Iterator[tuple[str, FastAPI]]:
    """(base URL, app) of a server running in a thread; stopped on exit."""
    app = create_app(config, embedder)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=5))
    app.state.uvicorn_server = server
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "server start")
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)


def post_embeddings(url: str, **body: Any) -> Any:
    """POST /v1/embeddings with `body` as JSON; the httpx response."""
    import httpx

    return httpx.post(f"{url}/v1/embeddings", json=body, timeout=120)


def embedding_rows(response: Any) -> np.ndarray:
    """A 200 answer's float vectors, (n, dims) float32."""
    assert response.status_code == 200, response.text
    return np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


def raw_post(url: str, body: bytes, path: str = "/v1/embeddings",
             content_length: int | None = None) -> socket.socket:
    """Send a POST by hand (so the test decides when the connection closes)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    length = len(body) if content_length is None else content_length
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()
    sock.sendall(head + body)
    return sock


def metric(app: FastAPI, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (the model label, say,
    left out: every model's)."""
    return sum(s.value for family in app.state.metrics.registry.collect()
               for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())

