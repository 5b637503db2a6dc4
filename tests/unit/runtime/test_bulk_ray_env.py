"""The environment a local Ray cluster for --engine ray starts with (no Ray needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import runtime
from runtime.bulk.ray_engine import _local_cluster_env

ROOT = str(Path(runtime.__file__).resolve().parent.parent)


def test_workers_import_this_checkout_and_send_no_usage_statistics(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    with _local_cluster_env():
        assert os.environ["PYTHONPATH"] == os.pathsep.join([ROOT, "/elsewhere"])
        assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    # Only the cluster's processes see it: this process's environment is as it was.
    assert os.environ["PYTHONPATH"] == "/elsewhere"
    assert "RAY_USAGE_STATS_ENABLED" not in os.environ


def test_a_users_own_usage_statistics_choice_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    with _local_cluster_env():
        assert os.environ["PYTHONPATH"] == ROOT
        assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
    assert "PYTHONPATH" not in os.environ
