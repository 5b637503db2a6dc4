"""The real server process: startup failures, SIGTERM under load, load, memory, draining.

Bounded on purpose (CI has 2 cores for the whole suite): a few hundred concurrent requests
prove batching keeps every answer with its own input; 10,000 small requests prove memory
stays flat.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import pytest

from tests import loadgen
from tests.helpers import (ROOT, assert_parity, cosine_rows, decode_embeddings, free_port,
                           in_flight, st_reference, wait_healthy)
from tests.inprocess import gated_embedder, metric, serve, server_config, wait_for

WORDS = ("river mountain quantum bread violin harbor engine lantern orchard galaxy pepper "
         "glacier novel copper meadow signal thunder canvas").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{i}: " + " ".join(rng.choices(WORDS, k=rng.randint(3, 40))) for i in range(n)]


def launch(model_path: Path, *flags: str, capture: bool = False) -> subprocess.Popen:
    """The server as users start it; output captured only for short-lived runs (a full
    pipe would stall a long-running server)."""
    cmd = [sys.executable, "-m", "server.launch_server", "--model-path", str(model_path),
           "--host", "127.0.0.1", *flags]
    pipe = subprocess.PIPE if capture else None
    return subprocess.Popen(cmd, cwd=ROOT, stdout=pipe, stderr=pipe, text=True)


# --- startup failures: exit non-zero, at once, with one clear line ---------------------

def _corrupt_onnx(d: Path) -> None:
    (d / "model.onnx").write_bytes(b"this is not an ONNX protobuf" * 100)


def _no_tokenizer(d: Path) -> None:
    (d / "tokenizer.json").unlink()


def _edit_manifest(d: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    data = json.loads((d / "manifest.json").read_text())
    edit(data)
    (d / "manifest.json").write_text(json.dumps(data))


def _unknown_adapter(d: Path) -> None:
    _edit_manifest(d, lambda m: m["spec"].update(family="perceiver-xl", adapter="perceiver"))


def _foreign_plan(d: Path) -> None:
    (d / "text.plan").write_bytes(b"\0" * 64)
    _edit_manifest(d, lambda m: m.update(tensorrt={
        "flavour": "tensorrt", "version": "10.0.1", "compute_capabilities": ["8.6"],
        "precision": "fp32", "gpu_name": "NVIDIA A10G",
        "plans": {"text": {"file": "text.plan", "profiles": []}}}))


def _garbled_manifest(d: Path) -> None:
    (d / "manifest.json").write_text("{not json")


BROKEN = {
    "corrupt_onnx": (_corrupt_onnx, (), "ONNX Runtime could not load"),
    "missing_tokenizer": (_no_tokenizer, (), "cannot load tokenizer"),
    "unknown_adapter": (_unknown_adapter, (), "unknown adapter 'perceiver'"),
    # No GPU here: a plan built elsewhere cannot be used and --backend tensorrt says so.
    "foreign_tensorrt_plan": (_foreign_plan, ("--backend", "tensorrt"), "TensorRT"),
    "garbled_manifest": (_garbled_manifest, (), "manifest.json is unreadable"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_artifact_exits_nonzero_with_one_clear_line(
        case: str, minilm_artifact: Path, tmp_path: Path) -> None:
    breaker, flags, expected = BROKEN[case]
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    for f in minilm_artifact.iterdir():  # links: the 90 MB graph is not copied
        (artifact / f.name).symlink_to(f)
    (artifact / "manifest.json").unlink()
    shutil.copy(minilm_artifact / "manifest.json", artifact / "manifest.json")
    if case == "corrupt_onnx":
        (artifact / "model.onnx").unlink()
    breaker(artifact)
    proc = launch(artifact, "--port", str(free_port()), *flags, capture=True)
    _, err = proc.communicate(timeout=120)  # a hang fails here
    assert proc.returncode == 1, err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1, err
    assert "startup failed:" in errors[0] and expected in errors[0], errors[0]
    assert "Traceback" not in err


# --- SIGTERM --------------------------------------------------------------------------

def test_sigterm_under_load_finishes_in_flight_requests_and_exits_0(
        minilm_artifact: Path, minilm_path: Path) -> None:
    port = free_port()
    proc = launch(minilm_artifact, "--port", str(port), "--drain-timeout", "60",
                  "--max-batch-size", "8")
    url = f"http://127.0.0.1:{port}"
    texts = sentences(16, seed=1)
    try:
        wait_healthy(url, proc, 120)
        results: list[httpx.Response] = []
        clients = [threading.Thread(target=lambda: results.append(httpx.post(
            f"{url}/v1/embeddings", json={"input": texts, "encoding_format": "base64"},
            timeout=120))) for _ in range(8)]
        for c in clients:
            c.start()
        wait_for(lambda: in_flight(url) >= 8 + 1, "requests in flight")  # +1: this scrape
        proc.send_signal(signal.SIGTERM)
        for c in clients:
            c.join(120)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [r.status_code for r in results] == [200] * 8
    reference = st_reference(minilm_path, texts)
    for r in results:
        assert_parity(decode_embeddings(r.json()), reference)


def test_sigterm_flips_readiness_first_and_serves_through_the_drain_delay(
        minilm_artifact: Path) -> None:
    port = free_port()
    proc = launch(minilm_artifact, "--port", str(port), "--drain-delay", "30")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 120)
        wait_for(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 200, "ready")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 503, "503")
        ready = httpx.get(f"{url}/ready", timeout=10)
        assert ready.json()["error"]["message"] == (
            "The server is shutting down: finishing in-flight requests.")
        # Still serving while load balancers take the replica out.
        r = httpx.post(f"{url}/v1/embeddings", json={"input": "still served"}, timeout=30)
        assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)  # a second signal skips the rest of the delay
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_draining_server_stops_accepting_and_finishes_what_it_has(minilm_artifact: Path) -> None:
    config = server_config(minilm_artifact)
    embedder, backend = gated_embedder(minilm_artifact, config.runtime)
    with serve(config, embedder) as (url, app):
        wait_for(lambda: app.state.readiness.ready, "warm-up")
        backend.gate.clear()
        results: list[int] = []
        clients = [threading.Thread(target=lambda: results.append(httpx.post(
            f"{url}/v1/embeddings", json={"input": "in flight at shutdown"}, timeout=60
        ).status_code)) for _ in range(4)]
        for c in clients:
            c.start()
        wait_for(lambda: metric(app, "trt_embed_requests_in_flight") == 4, "4 in flight")
        server = app.state.uvicorn_server
        server.handle_exit(signal.SIGTERM, None)  # what uvicorn's SIGTERM handler does
        wait_for(lambda: _refused(url), "listener to close")
        assert not backend.gate.is_set() and not results  # nothing finished yet
        backend.gate.set()
        for c in clients:
            c.join(60)
        assert results == [200] * 4


def _refused(url: str) -> bool:
    """The server takes no new request: refused, or (a connect racing the listener's
    close) accepted by the kernel and then reset."""
    try:
        httpx.get(f"{url}/health", timeout=2)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return True
    return False


# --- load and memory ------------------------------------------------------------------

@pytest.fixture(scope="module")
def lean_server(minilm_artifact: Path) -> Iterator[tuple[str, int]]:
    """(url, pid) of a server of its own: one ORT thread, so no spinning core is measured."""
    port = free_port()
    proc = launch(minilm_artifact, "--port", str(port), "--threads", "1", "--max-wait-ms", "2",
                  "--log-level", "warning")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 120)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(60)


def body(texts: list[str]) -> bytes:
    return json.dumps({"input": texts, "encoding_format": "base64"}).encode()


def test_load_every_answer_belongs_to_its_own_input(lean_server: tuple[str, int]) -> None:
    url, _ = lean_server
    texts = sentences(64, seed=2)
    single = np.concatenate([decode_embeddings(json.loads(raw))
                             for _, raw in loadgen.run(url, [body([t]) for t in texts], 1)])
    rng = random.Random(3)
    plans = [rng.sample(range(len(texts)), rng.randint(1, 4)) for _ in range(64 * 4)]
    answers = loadgen.run(url, [body([texts[i] for i in idx]) for idx in plans], 64)
    assert sorted({status for status, _ in answers}) == [200]
    for idx, (_, raw) in zip(plans, answers):
        got = decode_embeddings(json.loads(raw))
        assert cosine_rows(got, single[idx]).min() >= 0.99999
        nearest = np.argmax(got @ single.T, axis=1)  # the closest single vector is its own
        assert nearest.tolist() == idx


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kb = next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]
    return int(kb) / 1024


@pytest.mark.slow
def test_memory_stays_flat_over_10000_requests(lean_server: tuple[str, int]) -> None:
    url, pid = lean_server
    # Short inputs: the model's own compute is not what this measures (50-token texts cost
    # ~17 ms each on one CI core), the serving path around it is.
    texts = [f"note {i} {WORDS[i % len(WORDS)]}" for i in range(500)]

    def payload(i: int) -> bytes:  # mostly token ids, some text, 1 in 10 a 400
        if i % 10 == 0:
            return b'{"input": []}'
        if i % 5 == 1:
            return body([texts[i % 500]])
        return json.dumps({"input": [101, 1000 + i % 20000, 102],
                           "encoding_format": "base64"}).encode()

    payloads = [payload(i) for i in range(10_000)]
    loadgen.run(url, payloads[:500], 64)  # warm: arenas, caches and pools reach steady state
    before = _rss_mb(pid)
    codes = [status for status, _ in loadgen.run(url, payloads, 64)]
    growth = _rss_mb(pid) - before
    assert codes.count(200) == 9000 and codes.count(400) == 1000
    assert growth < 100, f"resident memory grew {growth:.1f} MB over 10,000 requests"
