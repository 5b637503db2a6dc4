"""The /v1/embeddings fast path (server/embeddings_route.py) as plain ASGI, on the real model.

The HTTP suites check what clients see; these check that the fast path is what answers:
POST /v1/embeddings never reaches the app behind it, everything else does.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import AsyncIterator

import numpy as np
import orjson
import pytest

from runtime.config import RuntimeConfig
from runtime.pipeline.embedder import Embedder
from server.config import ServerConfig
from server.embeddings_route import EmbeddingsRoute
from server.guards import Message, Receive, Scope, Send
from server.metrics import Metrics
from server.models import ServedModel, ServedModels
from tests.helpers import assert_parity, st_reference

TEXTS = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog."]


@pytest.fixture
async def embedder(minilm_artifact: Path) -> AsyncIterator[Embedder]:
    emb = Embedder.load(minilm_artifact, RuntimeConfig(threads=1))
    await emb.start()
    yield emb
    await emb.close()


class Inner:
    """The app behind the fast path: records what reaches it and answers 204."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call(route: EmbeddingsRoute, emb: Embedder, method: str, path: str,
               body: bytes) -> tuple[int, bytes]:
    config = ServerConfig(artifact=emb.artifact, model_path=str(emb.artifact.path),
                          served_model_name="m")
    models = ServedModels([ServedModel(config, emb)])
    app = types.SimpleNamespace(state=types.SimpleNamespace(models=models))
    scope: Scope = {"type": "http", "method": method, "path": path, "headers": [], "app": app}
    incoming: list[Message] = [{"type": "http.request", "body": body[:7], "more_body": True},
                {"type": "http.request", "body": body[7:], "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # a client that stays: the answer is sent first
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await route(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def make_route(artifact: Path) -> tuple[EmbeddingsRoute, Inner, Metrics]:
    inner, metrics = Inner(), Metrics()
    return EmbeddingsRoute(inner, metrics), inner, metrics


async def test_post_is_answered_by_the_fast_path(embedder: Embedder, minilm_artifact: Path,
                                                 minilm_path: Path) -> None:
    route, inner, metrics = make_route(minilm_artifact)
    status, body = await call(route, embedder, "POST", "/v1/embeddings",
                              orjson.dumps({"input": TEXTS}))
    assert status == 200 and inner.paths == []
    answer = orjson.loads(body)
    vectors = np.array([d["embedding"] for d in answer["data"]], dtype=np.float32)
    assert_parity(vectors, st_reference(minilm_path, TEXTS))
    assert answer["model"] == "m" and answer["usage"]["prompt_tokens"] == 21  # 9 + 12 with [CLS], [SEP]
    assert metrics.prompt_tokens.labels("m")._value.get() == 21


async def test_errors_get_the_mapped_status_and_body(embedder: Embedder,
                                                     minilm_artifact: Path) -> None:
    route, inner, _ = make_route(minilm_artifact)
    status, body = await call(route, embedder, "POST", "/v1/embeddings", b"{not json")
    assert status == 400 and inner.paths == []
    assert orjson.loads(body) == {"error": {
        "message": "We could not parse the JSON body of your request: it is not valid JSON.",
        "type": "invalid_request_error", "param": None, "code": "invalid_json"}}
    status, body = await call(route, embedder, "POST", "/v1/embeddings",
                              orjson.dumps({"input": "x", "dimensions": 8}))
    assert status == 400 and orjson.loads(body)["error"]["code"] == "unsupported_parameter"


async def test_other_requests_go_on_to_the_app(embedder: Embedder, minilm_artifact: Path) -> None:
    route, inner, _ = make_route(minilm_artifact)
    for method, path in (("GET", "/v1/embeddings"), ("POST", "/v1/embeddings/"),
                         ("POST", "/v1/models"), ("GET", "/health")):
        status, _ = await call(route, embedder, method, path, b"{}")
        assert status == 204
    assert inner.paths == [("GET", "/v1/embeddings"), ("POST", "/v1/embeddings/"),
                           ("POST", "/v1/models"), ("GET", "/health")]
