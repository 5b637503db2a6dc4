"""Overload, queue waits, disconnects, readiness, limits and auth on a real in-process server.

The model is the real all-MiniLM-L6-v2 artifact behind a gate (tests/inprocess.py): with
the gate shut, an answer proves the server did not wait for the model.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route

from runtime.pipeline.limits import BatchFlags
from tests.helpers import assert_parity, decode_embeddings, st_reference
from tests.inprocess import (GatedBackend, gated_embedder, metric, raw_post, serve,
                             server_config, wait_for)

T = TypeVar("T")
# (url, app, backend) of a server whose model sits behind a gate
Gated = tuple[str, FastAPI, GatedBackend]
TEXTS = [f"sentence number {i} about the weather in a city" for i in range(8)]


def post(url: str, payload: dict[str, Any], **kw: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json=payload, timeout=60, **kw)


def in_thread(fn: Callable[..., T], *args: Any) -> tuple[threading.Thread, list[T]]:
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)))
    thread.start()
    return thread, out


@pytest.fixture()
def gated(minilm_artifact: Path, request: pytest.FixtureRequest) -> Iterator[Gated]:
    """(url, app, backend) for a server with the batch settings the test parametrizes."""
    config = server_config(minilm_artifact, BatchFlags(**getattr(request, "param", {})))
    embedder, backend = gated_embedder(minilm_artifact, config.runtime)
    with serve(config, embedder) as (url, app):
        wait_for(lambda: app.state.readiness.ready, "warm-up")
        yield url, app, backend
        backend.gate.set()


def hold_backend(url: str, backend: GatedBackend) -> tuple[threading.Thread, list[httpx.Response]]:
    """Shut the gate and park one request's batch at it: the backend is now busy."""
    backend.gate.clear()
    backend.entered.clear()
    blocker = in_thread(post, url, {"input": "the request that holds the backend"})
    assert backend.entered.wait(30)
    return blocker


@pytest.mark.parametrize("gated", [{"max_queue_rows": 64}], indirect=True)
def test_overload_answers_429_promptly_with_retry_after(gated: Gated) -> None:
    url, app, backend = gated
    blocker, blocked = hold_backend(url, backend)
    filler, filled = in_thread(post, url, {"input": [f"queued {i}" for i in range(60)]})
    wait_for(lambda: app.state.embedder.batcher.queue_rows == 60, "queue to fill")
    r = post(url, {"input": TEXTS})
    assert not backend.gate.is_set()  # answered while the model was still held
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert r.json()["error"]["code"] == "overloaded"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    backend.gate.set()
    blocker.join()
    filler.join()
    assert blocked[0].status_code == 200 and filled[0].status_code == 200
    assert post(url, {"input": TEXTS}).status_code == 200  # retrying later works
    assert metric(app, "trt_embed_requests_total", path="/v1/embeddings", status="429") == 1


@pytest.mark.parametrize("gated", [{"max_queue_wait_ms": 200}], indirect=True)
def test_queue_wait_limit_answers_503_and_never_runs_the_rows(gated: Gated) -> None:
    url, app, backend = gated
    rows_before = app.state.embedder.batcher.rows_run
    blocker, blocked = hold_backend(url, backend)
    r = post(url, {"input": TEXTS})
    assert not backend.gate.is_set()
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "service_unavailable"
    assert "waited 200 ms" in r.json()["error"]["message"]
    backend.gate.set()
    blocker.join()
    assert blocked[0].status_code == 200
    assert app.state.embedder.batcher.rows_run == rows_before + 1  # the blocker's row only


def test_disconnect_storm_drops_queued_work(gated: Gated, minilm_path: Path) -> None:
    url, app, backend = gated
    batcher = app.state.embedder.batcher
    rows_before = batcher.rows_run
    blocker, blocked = hold_backend(url, backend)
    clients = 32
    body = json.dumps({"input": TEXTS}).encode()
    sockets = [raw_post(url, body) for _ in range(clients)]
    wait_for(lambda: batcher.queue_rows == clients * len(TEXTS), "storm rows to queue")
    for sock in sockets:  # every client hangs up while its rows wait
        sock.close()
    wait_for(lambda: metric(app, "trt_embed_client_disconnects_total") == clients, "disconnects")
    assert batcher.queue_rows == 0  # dropped at once, not when the backend frees up
    backend.gate.set()
    blocker.join()
    assert blocked[0].status_code == 200
    assert batcher.rows_run == rows_before + 1  # none of the storm's 256 rows ran
    assert httpx.get(f"{url}/health").status_code == 200
    r = post(url, {"input": TEXTS, "encoding_format": "base64"})
    assert r.status_code == 200
    assert_parity(decode_embeddings(r.json()), st_reference(minilm_path, TEXTS))


def test_readiness_is_503_until_warm_up_has_run(minilm_artifact: Path) -> None:
    config = server_config(minilm_artifact)
    embedder, backend = gated_embedder(minilm_artifact, config.runtime)
    backend.gate.clear()  # the warm-up forward pass waits at the gate
    with serve(config, embedder) as (url, app):
        assert backend.entered.wait(30)
        assert httpx.get(f"{url}/health").status_code == 200  # alive
        r = httpx.get(f"{url}/ready")
        assert r.status_code == 503
        assert r.json()["error"]["message"] == "The model is warming up."
        backend.gate.set()
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, "ready")
        rows = app.state.embedder.batcher.rows_run
        assert httpx.get(f"{url}/health_generate").status_code == 200
        assert app.state.embedder.batcher.rows_run == rows + 1  # a real forward pass ran


def test_limits_answer_413_and_400_and_the_server_stays_healthy(minilm_artifact: Path) -> None:
    config = server_config(minilm_artifact, runtime={"max_request_tokens": 40},
                           max_request_bytes=4096, max_inputs_per_request=4)
    with serve(config) as (url, _):
        # A declared 100 MB body is refused without one body byte being sent.
        sock = raw_post(url, b"", content_length=100_000_000)
        sock.settimeout(30)
        answer = b"".join(iter(lambda: sock.recv(65536), b"")).decode()  # until it closes
        sock.close()
        assert answer.startswith("HTTP/1.1 413"), answer
        assert '"code":"payload_too_large"' in answer
        # A chunked body has no length up front: it is counted while it streams.
        chunks = (b" " * 1024 for _ in range(16))
        r = httpx.post(f"{url}/v1/embeddings", content=chunks, timeout=30,
                       headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = post(url, {"input": TEXTS[:4]})  # 4 inputs x ~12 tokens > 40 tokens
        assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_tokens"
        r = post(url, {"input": TEXTS[:5]})
        assert r.status_code == 400 and r.json()["error"]["param"] == "input"
        assert post(url, {"input": TEXTS[:2]}).status_code == 200


def test_a_body_a_browser_can_send_cross_site_is_415_before_the_model(gated: Gated) -> None:
    """text/plain, form-encoded and type-less POSTs need no CORS preflight: were they parsed
    as JSON, any web page could drive an appliance without --api-key. The gate stays shut,
    so the answers cannot have come from the model."""
    url, app, backend = gated
    backend.gate.clear()
    backend.entered.clear()
    body = json.dumps({"input": "hi"}).encode()
    cases = [("/v1/embeddings", "text/plain", "'text/plain'"),
             ("/v1/embeddings", "application/x-www-form-urlencoded",
              "'application/x-www-form-urlencoded'"),
             ("/v1/embeddings", None, "no Content-Type"),
             ("/tokenize", "application/x-www-form-urlencoded",
              "'application/x-www-form-urlencoded'"),
             ("/embed", "text/plain;charset=UTF-8", "'text/plain;charset=UTF-8'")]
    for path, content_type, sent in cases:
        headers = {"content-type": content_type} if content_type else {}
        r = httpx.post(url + path, content=body, headers=headers, timeout=30)
        assert r.status_code == 415, (path, r.text)
        assert r.json() == {"error": {
            "message": "The request body must be JSON, sent with Content-Type: "
                       f"application/json (this request sent {sent}).",
            "type": "invalid_request_error", "param": None, "code": "unsupported_media_type"}}
    assert not backend.entered.is_set()  # no batch reached the model
    assert metric(app, "trt_embed_requests_total", path="/v1/embeddings", status="415") == 3
    backend.gate.set()
    r = httpx.post(f"{url}/v1/embeddings", content=body, timeout=30,
                   headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and len(r.json()["data"]) == 1


def test_every_route_but_health_requires_the_api_key(minilm_artifact: Path) -> None:
    config = server_config(minilm_artifact, api_key="s3cret-key")
    with serve(config) as (url, app):
        wait_for(lambda: app.state.readiness.ready, "warm-up")
        routes = [(m, r.path) for r in app.routes if isinstance(r, Route)
                  for m in sorted(r.methods or ())]
        routes.append(("POST", "/v1/embeddings"))  # the fast path: no FastAPI route
        paths = {p for _, p in routes}
        assert {"/metrics", "/docs", "/openapi.json", "/ready"} <= paths
        for method, path in routes:
            bare = httpx.request(method, url + path)
            wrong = httpx.request(method, url + path, headers={"Authorization": "Bearer nope"})
            good = httpx.request(method, url + path, json={"input": "hi"},
                                 headers={"Authorization": "Bearer s3cret-key"})
            if path.startswith(("/health", "/ready", "/metrics")):  # open, as in SGLang
                assert bare.status_code == 200, path
                continue
            assert bare.status_code == 401, (method, path)
            assert wrong.status_code == 401, (method, path)
            assert good.status_code not in (401, 500), (method, path, good.status_code)
            if method != "HEAD":
                assert wrong.json()["error"]["code"] == "invalid_api_key"
                assert wrong.json()["error"]["type"] == "invalid_request_error"
        assert httpx.get(url + "/no-such-route").status_code == 401  # nothing leaks, not even 404s
