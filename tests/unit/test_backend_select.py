"""Backend selection on this machine (no TensorRT libraries, no GPU): real checks, no mocks."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys

import pytest

from models.spec import ModelSpec
from runtime.errors import ArtifactError, MissingDependencyError
from runtime.manifest import Graph, Manifest
from runtime.backends.choose import choose, require_tensorrt, tensorrt_missing
from tests.helpers import ROOT

SPEC = ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=8, max_len=16)
PLAIN = Manifest(spec=SPEC, source={}, precision="fp32", opset=17,
                 graphs={"text": Graph("m.onnx", {}, {})}, versions={}, verification={})
WITH_PLAN = dataclasses.replace(PLAIN, tensorrt={"plan": "model.plan"})

needs_no_gpu = pytest.mark.skipif(not tensorrt_missing(), reason="this machine can run TensorRT")


def test_onnxruntime_requested_or_no_plan() -> None:
    assert choose(WITH_PLAN, "onnxruntime") == ("onnxruntime", "requested")
    assert choose(PLAIN, "auto") == ("onnxruntime", "the artifact has no TensorRT plan")


@needs_no_gpu
def test_auto_falls_back_and_says_why() -> None:
    name, reason = choose(WITH_PLAN, "auto")
    assert name == "onnxruntime"
    assert reason.startswith("TensorRT plan present but ")
    assert "pip install -e '.[tensorrt]'" in reason and "no GPU" in reason


@needs_no_gpu
def test_tensorrt_requested_names_what_is_missing() -> None:
    with pytest.raises(MissingDependencyError) as err:
        choose(WITH_PLAN, "tensorrt")
    message = str(err.value)
    assert "TensorRT is not installed or cannot load its libraries" in message
    assert "no GPU" in message and "pip install -e '.[tensorrt]'" in message
    with pytest.raises(MissingDependencyError):
        require_tensorrt()


@pytest.mark.skipif(bool(tensorrt_missing()), reason="needs TensorRT and a GPU")
def test_tensorrt_requested_without_plan() -> None:
    with pytest.raises(ArtifactError, match="no TensorRT plan"):
        choose(PLAIN, "tensorrt")


@needs_no_gpu
def test_launch_server_tensorrt_fails_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No build starts, no port opens: the process exits with what is missing."""
    proc = subprocess.run(
        [sys.executable, "-m", "server.launch_server", "--model-path", str(tmp_path / "ckpt"),
         "--is-embedding", "--backend", "tensorrt", "--artifact-cache", str(tmp_path / "c")],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "pip install -e '.[tensorrt]'" in proc.stderr and "no GPU" in proc.stderr
    assert not (tmp_path / "c").exists()


@needs_no_gpu
def test_builder_tensorrt_fails_before_exporting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from builder.__main__ import main

    assert main(["--model-path", str(tmp_path / "none"), "--output", str(tmp_path / "out"),
                 "--backend", "tensorrt"]) == 1
    assert not (tmp_path / "out").exists()


def test_choice_is_logged(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from runtime.config import RuntimeConfig
    from runtime.backends.choose import load_backend

    caplog.set_level(logging.INFO, logger="runtime.backends.choose")
    with pytest.raises(ArtifactError):  # no ONNX file in tmp_path: the load itself fails
        load_backend(tmp_path, PLAIN, RuntimeConfig(backend="auto"))
    assert "backend onnxruntime for the text tower: the artifact has no TensorRT plan" in caplog.text
