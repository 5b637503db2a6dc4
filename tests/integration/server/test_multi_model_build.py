"""Several models named by checkpoint in a models file: each is built on first use into the
one artifact cache, by the one cache rule, with its own line's precision (`--build-only`
builds them and exits), and a later start reuses both entries and serves them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from runtime.artifact.cache import Want, locate
from runtime.artifact.manifest import Manifest
from tests.helpers import ROOT, free_port, wait_healthy


def launcher(models: Path, cache: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "server.launch_server", "--models-file", str(models),
            "--artifact-cache", str(cache), "--host", "127.0.0.1", *flags]


def test_each_checkpoint_is_built_on_first_use_with_its_own_precision(
        tmp_path: Path, reranker_paths: dict[str, Path]) -> None:
    ce, qr = reranker_paths["cross_encoder"], reranker_paths["qwen3_reranker"]
    models, cache = tmp_path / "models.txt", tmp_path / "cache"
    models.write_text(f"ce {ce} --precision fp16\nqr {qr}\n")
    built = subprocess.run(launcher(models, cache, "--build-only"), cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    assert built.stderr.count("cache miss, building") == 2
    entries = {"ce": locate(cache, Want(str(ce), "fp16"), None),
               "qr": locate(cache, Want(str(qr), "fp32"), None)}
    assert {name: Manifest.load(path).precision for name, path in entries.items()} == {
        "ce": "fp16", "qr": "fp32"}
    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(launcher(models, cache, "--port", str(port)), cwd=ROOT,
                                stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, timeout_s=300)
        cards = httpx.get(url + "/v1/models", timeout=30).json()["data"]
        assert [(c["id"], c["root"]) for c in cards] == [("ce", str(ce)), ("qr", str(qr))]
        for name in ("ce", "qr"):
            r = httpx.post(url + "/v1/rerank", json={"model": name, "query": "q",
                                                     "documents": ["a", "b"]}, timeout=60)
            assert r.status_code == 200 and len(r.json()) == 2, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "cache miss" not in (tmp_path / "serve.log").read_text()  # both reused
