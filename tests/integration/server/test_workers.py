"""`--workers 2`: two whole servers accept on one port; each answers correctly, SIGTERM
drains both and exits 0, and a worker that dies takes the appliance down with it (exit
nonzero, the other worker stopped) instead of leaving half of it serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import (ROOT, decode_embeddings, free_port, minilm_checkpoint, st_reference,
                           wait_healthy)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def start(artifact: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """The server with two workers, once both have said they are ready (their logs)."""
    port = free_port()
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "server.launch_server", "--model-path",
                                 str(artifact), "--is-embedding", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "2"], cwd=ROOT, stderr=err)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc, 120)
    deadline = time.monotonic() + 120
    while log.read_text().count("ready: warm-up forward pass done") < 2:
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.2)
    return proc, url


def workers_of(proc: subprocess.Popen) -> list[int]:
    """The two worker processes (the spawn start method adds a resource tracker too)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [p for p in children(proc.pid)
                 if "multiprocessing.spawn" in Path(f"/proc/{p}/cmdline").read_text()
                 and "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]
        if len(found) == 2:
            return found
        time.sleep(0.2)
    raise AssertionError(f"want 2 workers under {proc.pid}, have {children(proc.pid)}")


@pytest.fixture
def texts() -> list[str]:
    return [f"sentence number {i} about rivers and banks" for i in range(24)]


def test_two_workers_answer_and_drain_on_sigterm(minilm_artifact: Path, texts: list[str],
                                                 tmp_path: Path) -> None:
    proc, url = start(minilm_artifact, tmp_path / "server.log")
    try:
        pids = workers_of(proc)
        reference = st_reference(minilm_checkpoint(), texts)
        for text, want in zip(texts, reference):  # a new connection each: both workers
            with httpx.Client(base_url=url, timeout=60) as client:
                r = client.post("/v1/embeddings", json={"input": text})
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(decode_embeddings(r.json())[0], want, atol=1e-5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not [p for p in pids if os.path.exists(f"/proc/{p}")]
    finally:
        proc.kill()


def test_a_worker_that_dies_stops_the_appliance(minilm_artifact: Path, tmp_path: Path) -> None:
    proc, url = start(minilm_artifact, tmp_path / "server.log")
    try:
        first, second = workers_of(proc)
        os.kill(first, signal.SIGKILL)
        assert proc.wait(60) != 0
        assert not os.path.exists(f"/proc/{second}") or _zombie(second)
    finally:
        proc.kill()


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
