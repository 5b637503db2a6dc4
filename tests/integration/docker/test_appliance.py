"""The cpu appliance image, built and run for real (`make appliance-test`; also in `make test`
wherever a Docker engine answers; skipped with the reason where none does, as on CI).

The image is built by docker/build-image.sh exactly as `make image` builds it, then started
as users start it: no MODEL (the bundled all-MiniLM-L6-v2), a checkpoint built into a
volume on first start and reused on restart, `docker stop` under load, a cache directory
the server's uid cannot write. Measured figures are printed (run with -s) for the README.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest

from tests.helpers import (assert_parity, cosine_rows, decode_embeddings, in_flight,
                           st_reference)
from tests.integration.docker.appliance import (IMAGE, build, docker,
                                                engine_missing, image_size, running)

pytestmark = pytest.mark.skipif(engine_missing() is not None,
                                reason=f"{engine_missing()}")

TEXTS = ["What is the capital of France?", "Paris is the capital of France.",
         "A container serves the same vectors as the server outside it.", "GPUs"]
CHECKPOINT_IN_CONTAINER = "/models/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    seconds = build("cpu", IMAGE, tmp_path_factory.mktemp("image") / "build.log")
    print(f"\n[appliance] make image: {seconds:.0f} s, {image_size(IMAGE) / 1e9:.2f} GB")
    return IMAGE


@pytest.fixture
def volume() -> Iterator[str]:
    name = f"trt-embed-test-{os.getpid()}-{time.monotonic_ns()}"
    docker("volume", "create", name)
    yield name
    docker("volume", "rm", "-f", name, check=False)


def embed(url: str, texts: list[str]) -> np.ndarray:
    r = httpx.post(f"{url}/v1/embeddings", json={"input": texts, "encoding_format": "base64"},
                   timeout=120)
    assert r.status_code == 200, r.text
    return decode_embeddings(r.json())


def test_the_image_is_small_and_runs_as_non_root(image: str) -> None:
    assert image_size(image) <= 1.2e9
    assert docker("image", "inspect", "-f", "{{.Config.User}}", image).stdout.strip() == \
        "10001:10001"
    assert docker("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip() == "10001"


def test_without_model_it_serves_the_bundled_minilm_with_the_servers_vectors(
        image: str, volume: str, minilm_server: str) -> None:
    with running("trt-embed-test-default", volumes=(f"{volume}:/cache",)) as box:
        print(f"\n[appliance] cold start, bundled model: ready in {box.wait_ready(120):.1f} s")
        assert "MODEL is not set: serving the bundled all-MiniLM-L6-v2" in box.logs()
        served = embed(box.url, TEXTS)
        outside = embed(minilm_server, TEXTS)
        assert served.shape == (len(TEXTS), 384)
        assert cosine_rows(served, outside).min() >= 0.9999
        models = httpx.get(f"{box.url}/v1/models", timeout=10).json()["data"]
        assert [m["id"] for m in models] == ["sentence-transformers/all-MiniLM-L6-v2"]
        bad = httpx.post(f"{box.url}/v1/embeddings", json={"input": ""}, timeout=10)
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_first_start_builds_into_the_volume_and_a_restart_reuses_it(
        image: str, volume: str, minilm_path: Path) -> None:
    mounts = (f"{volume}:/cache", f"{minilm_path}:{CHECKPOINT_IN_CONTAINER}:ro")
    env = {"MODEL": CHECKPOINT_IN_CONTAINER}
    with running("trt-embed-test-build", env=env, volumes=mounts) as box:
        cold = box.wait_ready(600)
        assert "artifact ready" in box.logs()  # the builder venv exported and verified it
        vectors = embed(box.url, TEXTS)
    with running("trt-embed-test-reuse", env=env, volumes=mounts) as box:
        warm = box.wait_ready(120)
        logs = box.logs()
        assert "cache hit, reusing the artifact" in logs and "artifact ready" not in logs
        assert np.array_equal(embed(box.url, TEXTS), vectors)
    print(f"\n[appliance] first start (export into the volume): {cold:.1f} s; "
          f"restart on the same volume: {warm:.1f} s")
    assert_parity(vectors, st_reference(minilm_path, TEXTS))


def _load(url: str, bodies: list[list[str]], results: list[tuple[int, list[str], object]]) \
        -> list[threading.Thread]:
    def one(texts: list[str]) -> None:
        try:
            r = httpx.post(f"{url}/v1/embeddings",
                           json={"input": texts, "encoding_format": "base64"}, timeout=120)
            results.append((r.status_code, texts, r.json() if r.status_code == 200 else r.text))
        except httpx.HTTPError as exc:  # a lost request: connection reset or refused
            results.append((0, texts, repr(exc)))
    return [threading.Thread(target=one, args=(texts,)) for texts in bodies]


def test_docker_stop_during_load_loses_no_request(image: str, minilm_path: Path) -> None:
    bodies = [[f"request {i} sentence {j}: the appliance drains what it has accepted before "
               f"it exits, so no client loses an answer" for j in range(96)] for i in range(8)]
    results: list[tuple[int, list[str], object]] = []
    with running("trt-embed-test-stop", stop_timeout=40) as box:
        box.wait_ready(120)
        clients = _load(box.url, bodies, results)
        for c in clients:
            c.start()
        deadline = time.monotonic() + 60
        while in_flight(box.url) < len(bodies) + 1 and time.monotonic() < deadline:  # +1: scrape
            time.sleep(0.02)
        start = time.monotonic()
        docker("stop", box.name, timeout=120)  # the container's own --stop-timeout: 40 s
        stopped = time.monotonic() - start
        for c in clients:
            c.join(120)
        state = box.state()
        logs = box.logs()
    print(f"\n[appliance] docker stop under load: {len(bodies)} requests in flight, "
          f"stopped in {stopped:.1f} s, exit {state['ExitCode']}")
    assert sorted(status for status, _, _ in results) == [200] * len(bodies), results
    assert state["ExitCode"] == 0 and not state["OOMKilled"], logs[-2000:]
    assert "/ready now 503" in logs and "drained after SIGTERM" in logs
    for _, texts, body in results:  # each answer is its own input's
        assert isinstance(body, dict)
        assert_parity(decode_embeddings(body), st_reference(minilm_path, texts))


def test_a_cache_dir_the_server_cannot_write_gets_one_clear_line(
        image: str, tmp_path: Path, minilm_path: Path) -> None:
    cache = tmp_path / "root-owned-cache"
    cache.mkdir(mode=0o755)  # owned by this (root) user: uid 10001 cannot write it
    if os.getuid() == 10001:
        pytest.skip("the test runs as the image's own uid")
    mounts = (f"{cache}:/cache", f"{minilm_path}:{CHECKPOINT_IN_CONTAINER}:ro")
    with running("trt-embed-test-uid", env={"MODEL": CHECKPOINT_IN_CONTAINER},
                 volumes=mounts) as box:
        assert box.wait_exit(120) == 1
        logs = box.logs()
    failed = [ln for ln in logs.splitlines() if "startup failed" in ln]
    assert len(failed) == 1, logs
    assert "not writable by uid 10001" in failed[0] and "chown -R 10001" in failed[0]
    assert "Traceback" not in logs


def test_make_image_gpu_bakes_an_rtx_plan_on_this_cpu_when_the_gpu_base_is_out_of_reach(
        tmp_path: Path) -> None:
    log = tmp_path / "gpu.log"
    build("gpu", "trt-embed:gpu", log)
    text = log.read_text()
    if "SKIPPED the gpu stages" not in text:  # a machine that reaches nvcr.io builds them
        assert image_size("trt-embed:gpu") > 0
        return
    # The fallback: the RTX plan compiled at `docker build` time with no GPU, for the
    # default model, where the launcher's cache rule puts it.
    manifest = docker("run", "--rm", "--entrypoint", "sh", "trt-embed:rtx-plan", "-c",
                      "cat /cache/*/tensorrt-rtx-fp32/manifest.json").stdout
    record = json.loads(manifest)["tensorrt"]
    assert record["flavour"] == "tensorrt-rtx" and set(record["plans"]) == {"text"}
    plan = docker("run", "--rm", "--entrypoint", "sh", "trt-embed:rtx-plan", "-c",
                  "stat -c %s /cache/*/tensorrt-rtx-fp32/text.plan").stdout
    assert int(plan) > 10_000_000
