"""The appliance tests leave no container and no anonymous volume behind: the image declares
VOLUME /cache, so every container run without a -v for it gets one of its own."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.docker import appliance


def test_a_container_is_removed_with_its_volumes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def docker(*args: str, check: bool = True, timeout: float = 600
               ) -> subprocess.CompletedProcess:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(appliance, "docker", docker)
    monkeypatch.setattr(appliance, "free_port", lambda: 40123)
    with appliance.running("trt-embed-test-x"):
        pass
    assert calls[-1] == ("rm", "-f", "-v", "trt-embed-test-x")
    assert calls[1][:2] == ("run", "-d") and "-v" not in calls[1]  # no named /cache volume
