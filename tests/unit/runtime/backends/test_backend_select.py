"""Backend selection: the pure choice (decide) over Machine values for both TensorRT
flavours, then the same choice on this machine (TensorRT for RTX imports, TensorRT 11's
libraries do not, no GPU): real checks, no mocks."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from models.spec import ModelSpec
from runtime.artifact import Artifact
from runtime.pipeline.choose import (OrtCuda, choose, decide, require_tensorrt,
                                     tensorrt_missing)
from runtime.backends.trt_plan import Machine, TrtRecord
from runtime.errors import ArtifactError, MissingDependencyError
from runtime.artifact.manifest import Graph, Manifest
from tests.helpers import ROOT

SPEC = ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=8, max_len=16)
PLAIN = Manifest(spec=SPEC, source={}, precision="fp32", opset=17,
                 graphs={"text": Graph("m.onnx", {}, {})}, versions={}, verification={})
TRT11 = TrtRecord(flavour="tensorrt", version="11.4.0.106", compute_capabilities=("9.0",),
                  precision="fp16", plans={}, gpu_name="NVIDIA H200")
RTX = TrtRecord(flavour="tensorrt-rtx", version="1.7.1.116", compute_capabilities=("8.6", "8.9"),
                precision="fp16", plans={})
BOTH = {"tensorrt": "11.4.0.106", "tensorrt-rtx": "1.7.1.116"}
H200 = Machine("NVIDIA H200", "9.0", BOTH)
ORT_H200 = OrtCuda("NVIDIA H200", "")
ORT_L4 = OrtCuda("NVIDIA L4", "")
NO_ORT_GPU = OrtCuda(lacking="onnxruntime 1.32.0 has no CUDAExecutionProvider")
L4 = Machine("NVIDIA L4", "8.9", BOTH)

needs_no_gpu = pytest.mark.skipif(not tensorrt_missing("tensorrt-rtx"),
                                  reason="this machine can run TensorRT")


def test_onnxruntime_requested_or_no_plan() -> None:
    assert decide(RTX, "onnxruntime", L4) == ("onnxruntime", "requested")
    assert decide(None, "auto", L4, cuda=NO_ORT_GPU) == (
        "onnxruntime", "onnxruntime CPU: no TensorRT plan in the artifact; no CUDA: "
                       "onnxruntime 1.32.0 has no CUDAExecutionProvider")
    # Forced CPU on a GPU machine whose onnxruntime has CUDA.
    assert decide(None, "onnxruntime", L4, cuda=ORT_L4) == ("onnxruntime", "requested")


@pytest.mark.parametrize("record, here", [(TRT11, H200), (RTX, L4)])
def test_auto_serves_the_plan_the_machine_runs(record: TrtRecord, here: Machine) -> None:
    name, reason = decide(record, "auto", here)
    assert name == record.flavour
    assert reason == (f"{record.flavour} {record.version} plan runs on {here.gpu_name} "
                      f"(compute capability {here.compute_capability})")
    assert decide(record, record.flavour, here) == (record.flavour, "requested")


def test_auto_falls_back_with_the_reason_in_one_line() -> None:
    name, reason = decide(RTX, "auto", H200)
    assert name == "onnxruntime" and "\n" not in reason
    assert reason.startswith("onnxruntime CPU: tensorrt-rtx plan present but the TensorRT "
                             "plans do not fit")
    assert "compute capability 9.0 is not a TensorRT for RTX target" in reason
    name, reason = decide(TRT11, "auto", Machine("NVIDIA H200", "9.0", {"tensorrt": "11.5.0.1"}))
    assert name == "onnxruntime" and "built with tensorrt 11.4.0.106" in reason
    assert decide(TRT11, "auto", None, "no GPU: none", NO_ORT_GPU) == (
        "onnxruntime", "onnxruntime CPU: tensorrt plan present but no GPU: none; no CUDA: "
                       "onnxruntime 1.32.0 has no CUDAExecutionProvider")


def test_an_explicit_flavour_that_cannot_run_fails_with_the_build_to_run() -> None:
    with pytest.raises(ArtifactError) as err:  # an RTX plan on a Hopper card
        decide(RTX, "tensorrt-rtx", H200)
    assert "this GPU (NVIDIA H200) is 9.0" in str(err.value)
    assert "rebuild on this GPU with python -m builder --backend tensorrt" in str(err.value)
    with pytest.raises(ArtifactError, match="holds a tensorrt-rtx plan; serve it with "
                                            "--backend tensorrt-rtx"):
        decide(RTX, "tensorrt", L4)
    with pytest.raises(ArtifactError, match="no TensorRT plan; build it with python -m "
                                            "builder --backend tensorrt-rtx"):
        decide(None, "tensorrt-rtx", L4)
    with pytest.raises(MissingDependencyError, match=r"no GPU: x\. Install with pip install "
                                                     r"-e '\.\[tensorrt-rtx\]'"):
        decide(RTX, "tensorrt-rtx", None, "no GPU: x")


def test_auto_without_a_plan_that_runs_serves_onnxruntime_cuda_on_a_gpu() -> None:
    assert decide(None, "auto", None, "", ORT_H200) == (
        "onnxruntime-cuda", "onnxruntime CUDA on NVIDIA H200: no TensorRT plan in the artifact")
    name, reason = decide(RTX, "auto", H200, "", ORT_H200)  # an RTX plan on a Hopper card
    assert name == "onnxruntime-cuda"
    assert reason.startswith("onnxruntime CUDA on NVIDIA H200: tensorrt-rtx plan present but")
    assert decide(TRT11, "auto", None, "TensorRT 11 is not installed", ORT_H200) == (
        "onnxruntime-cuda", "onnxruntime CUDA on NVIDIA H200: tensorrt plan present but "
                            "TensorRT 11 is not installed")
    # A plan that runs still wins over ONNX Runtime CUDA.
    assert decide(TRT11, "auto", H200, "", ORT_H200)[0] == "tensorrt"


def test_onnxruntime_cuda_requested() -> None:
    assert decide(TRT11, "onnxruntime-cuda", H200, "", ORT_H200) == (
        "onnxruntime-cuda", "requested, on NVIDIA H200")
    with pytest.raises(MissingDependencyError) as err:
        decide(None, "onnxruntime-cuda", None, "", NO_ORT_GPU)
    assert str(err.value) == (
        "--backend onnxruntime-cuda needs onnxruntime-gpu and an NVIDIA GPU: onnxruntime "
        "1.32.0 has no CUDAExecutionProvider; or serve on CPU with --backend onnxruntime")


def test_this_machine_without_onnxruntime_gpu_says_how_to_install() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    name, reason = choose(None, "auto")
    assert name == "onnxruntime"
    assert reason == (f"onnxruntime CPU: no TensorRT plan in the artifact; no CUDA: onnxruntime "
                      f"{ort.__version__} has no CUDAExecutionProvider (install it with make "
                      f"install-gpu (or pip uninstall -y onnxruntime && pip install -e "
                      f"'.[gpu]'))")
    with pytest.raises(MissingDependencyError, match="has no CUDAExecutionProvider"):
        choose(None, "onnxruntime-cuda")


@needs_no_gpu
def test_this_machine_falls_back_and_says_why() -> None:
    name, reason = choose(RTX, "auto")
    assert name == "onnxruntime" and reason.startswith("onnxruntime CPU: tensorrt-rtx plan "
                                                       "present but ")
    assert "no GPU" in reason and "is not installed" not in reason  # RTX imports here
    name, reason = choose(TRT11, "auto")
    assert "TensorRT 11 is not installed or cannot load its libraries" in reason


@needs_no_gpu
def test_tensorrt_requested_names_what_is_missing() -> None:
    with pytest.raises(MissingDependencyError) as err:
        choose(TRT11, "tensorrt")
    message = str(err.value)
    assert "TensorRT 11 is not installed or cannot load its libraries" in message
    assert "no GPU" in message and "pip install -e '.[tensorrt]'" in message
    with pytest.raises(MissingDependencyError, match="no GPU"):
        require_tensorrt("tensorrt-rtx")
    assert tensorrt_missing("tensorrt-rtx") and all(
        "is not installed" not in m for m in tensorrt_missing("tensorrt-rtx"))


@needs_no_gpu
def test_launch_server_tensorrt_fails_at_once(tmp_path: Path) -> None:
    """No build starts, no port opens: the process exits with what is missing."""
    proc = subprocess.run(
        [sys.executable, "-m", "server.launch_server", "--model-path", str(tmp_path / "ckpt"),
         "--is-embedding", "--backend", "tensorrt", "--artifact-cache", str(tmp_path / "c")],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "pip install -e '.[tensorrt]'" in proc.stderr and "no GPU" in proc.stderr
    assert not (tmp_path / "c").exists()


@needs_no_gpu
def test_builder_tensorrt_fails_before_exporting(tmp_path: Path) -> None:
    from builder.__main__ import main

    assert main(["--model-path", str(tmp_path / "none"), "--output", str(tmp_path / "out"),
                 "--backend", "tensorrt"]) == 1
    assert not (tmp_path / "out").exists()


def test_choice_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from runtime.pipeline.choose import load_backend
    from runtime.config import RuntimeConfig

    caplog.set_level(logging.INFO, logger="runtime.pipeline.choose")
    with pytest.raises(ArtifactError):  # no ONNX file in tmp_path: the load itself fails
        load_backend(Artifact(tmp_path, PLAIN), RuntimeConfig(backend="auto"))
    assert ("backend onnxruntime for the text tower: onnxruntime CPU: no TensorRT plan in the "
            "artifact; no CUDA: onnxruntime") in caplog.text
