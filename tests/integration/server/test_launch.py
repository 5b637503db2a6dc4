"""launch_server on a checkpoint dir: built on first use by a separate builder process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from runtime.artifact.manifest import Manifest
from runtime.artifact.cache import Want, locate
from tests.helpers import ROOT, running_server, server_pid


def test_checkpoint_is_built_on_first_use_and_served_without_torch(tmp_path: Path,
                                                                   minilm_path: Path) -> None:
    cache = tmp_path / "cache"
    with running_server(minilm_path, "--allow-auto-truncate", cache=cache) as url:
        artifact = locate(cache, Want(str(minilm_path)), None)
        assert Manifest.load(artifact).spec.family == "bert"
        # The serving process never loaded torch: the build ran in its own process.
        maps = Path(f"/proc/{server_pid(url)}/maps").read_text()
        assert "libtorch" not in maps and "onnxruntime" in maps
        # --allow-auto-truncate: an over-long input is cut to the maximum, not refused.
        r = httpx.post(f"{url}/v1/embeddings", json={"input": "word " * 400}, timeout=60)
        assert r.status_code == 200
        assert r.json()["usage"]["prompt_tokens"] == 256


def test_build_only_builds_then_exits_and_reports_an_unwritable_cache(tmp_path: Path,
                                                                       minilm_path: Path) -> None:
    """--build-only: the cache entry is made and the process exits 0 without serving; a cache
    dir it cannot write ends the start with one line naming the dir and the fix."""
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "server.launch_server", "--model-path", str(minilm_path),
           "--artifact-cache", str(cache), "--build-only"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "cache miss, building" in done.stderr and "build only:" in done.stderr
    assert Manifest.load(locate(cache, Want(str(minilm_path)), None)).precision == "fp32"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache dir should be")
    failed = subprocess.run([*cmd[:-3], "--artifact-cache", str(blocked), "--build-only"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    lines = [line for line in failed.stderr.splitlines() if "startup failed" in line]
    assert len(lines) == 1 and f"the artifact cache {blocked} is not writable" in lines[0]
    assert "chown -R" in lines[0] and "Traceback" not in failed.stderr
