"""docker/cache_key.py: the engine-cache key and the reuse/rebuild decision, on synthetic
manifests (the end-to-end entrypoint runs are in tests/integration/test_entrypoint.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from models.spec import ModelSpec
from runtime.backends.trt_plan import TrtRecord
from runtime.manifest import Graph, Manifest, fingerprint
from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("cache_key", ROOT / "docker" / "cache_key.py")
cache_key = importlib.util.module_from_spec(_spec)
sys.modules["cache_key"] = cache_key  # docker/ is not a package; dataclasses need the module
_spec.loader.exec_module(cache_key)
Target = cache_key.Target

H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"architectures": ["BertModel"]}')
    return ckpt


def target(model: Path | str, **kw: str) -> Target:
    values = dict(model=str(model), gpu=H100, tensorrt="11.4.0.106", backend="tensorrt",
                  precision="fp16")
    return Target(**{**values, **kw})


def write_manifest(directory: Path, checkpoint: Path, **kw) -> Path:
    spec = ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=8, max_len=16)
    manifest = Manifest(spec=spec, source={"path": str(checkpoint),
                                           "fingerprint": fingerprint(checkpoint)},
                        precision="fp16", opset=17, graphs={"text": Graph("model.onnx", {}, {})},
                        versions={}, verification={},
                        tensorrt=TrtRecord("tensorrt", "11.4.0.106", ("9.0",), "fp16", {},
                                           gpu_name=H100))
    directory.mkdir(parents=True, exist_ok=True)
    dataclasses.replace(manifest, **kw).save(directory)
    return directory


def test_key_separates_model_gpu_tensorrt_and_precision(tmp_path: Path, checkpoint: Path) -> None:
    base = cache_key.artifact_dir(tmp_path, target(checkpoint))
    assert base.parent.parent == tmp_path
    assert base.name == "nvidia-h100-80gb-hbm3-trt11.4.0.106-fp16"
    assert base.parent.name.startswith("ckpt-")
    others = {cache_key.artifact_dir(tmp_path, target(checkpoint, **kw)) for kw in (
        {"gpu": "NVIDIA A100-SXM4-80GB"}, {"tensorrt": "11.5.0"}, {"precision": "fp32"})}
    others.add(cache_key.artifact_dir(tmp_path, target(tmp_path)))
    assert base not in others and len(others) == 4


def test_key_for_hub_ids_is_stable_and_readable(tmp_path: Path) -> None:
    first = cache_key.artifact_dir(tmp_path, target("BAAI/bge-large-en-v1.5", gpu="cpu",
                                                    tensorrt="none", precision="fp32"))
    again = cache_key.artifact_dir(tmp_path, target("BAAI/bge-large-en-v1.5", gpu="cpu",
                                                    tensorrt="none", precision="fp32"))
    assert first == again
    assert first.parent.name.startswith("baai-bge-large-en-v1.5-")
    assert first.name == "cpu-trtnone-fp32"


def test_empty_cache_builds(tmp_path: Path, checkpoint: Path) -> None:
    verdict, why = cache_key.decide(tmp_path / "nothing", target(checkpoint))
    assert verdict == "build" and "no artifact" in why


def test_matching_manifest_is_reused(tmp_path: Path, checkpoint: Path) -> None:
    art = write_manifest(tmp_path / "art", checkpoint)
    assert cache_key.decide(art, target(checkpoint))[0] == "reuse"
    # GPU names are compared as nvidia-smi and CUDA print them, whatever the case.
    assert cache_key.decide(art, target(checkpoint, gpu=H100.lower()))[0] == "reuse"


@pytest.mark.parametrize("change, needle", [
    ({"gpu": "NVIDIA A100-SXM4-80GB"}, "built for GPU 'NVIDIA H100 80GB HBM3'"),
    ({"tensorrt": "11.5.0.1"}, "TensorRT '11.4.0.106'"),
    ({"precision": "fp32"}, "precision fp16, fp32 wanted"),
])
def test_other_gpu_tensorrt_or_precision_rebuilds(tmp_path: Path, checkpoint: Path,
                                                  change: dict, needle: str) -> None:
    art = write_manifest(tmp_path / "art", checkpoint)
    verdict, why = cache_key.decide(art, target(checkpoint, **change))
    assert verdict == "rebuild" and needle in why, why


def test_tensorrt_wanted_but_onnx_only_artifact_rebuilds(tmp_path: Path, checkpoint: Path) -> None:
    art = write_manifest(tmp_path / "art", checkpoint, tensorrt=None)
    assert cache_key.decide(art, target(checkpoint)) == ("rebuild",
                                                         "no TensorRT plan in the artifact")
    # Without TensorRT wanted, the ONNX-only artifact serves as is.
    onnx = target(checkpoint, backend="onnxruntime")
    assert cache_key.decide(art, onnx)[0] == "reuse"


def test_changed_checkpoint_rebuilds(tmp_path: Path, checkpoint: Path) -> None:
    art = write_manifest(tmp_path / "art", checkpoint)
    (checkpoint / "config.json").write_text('{"architectures": ["BertModel"], "x": 1}')
    verdict, why = cache_key.decide(art, target(checkpoint))
    assert verdict == "rebuild" and "changed" in why


def test_unreadable_manifest_rebuilds(tmp_path: Path, checkpoint: Path) -> None:
    art = write_manifest(tmp_path / "art", checkpoint)
    (art / "manifest.json").write_text("{not json")
    verdict, why = cache_key.decide(art, target(checkpoint))
    assert verdict == "rebuild" and "unreadable" in why


def test_cli_prints_directory_then_decision(tmp_path: Path, checkpoint: Path) -> None:
    args = [sys.executable, str(ROOT / "docker" / "cache_key.py"), "--model", str(checkpoint),
            "--cache", str(tmp_path / "cache"), "--gpu", "cpu", "--precision", "fp32"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}).stdout.splitlines()
    assert out[0] == str(cache_key.artifact_dir((tmp_path / "cache").resolve(),
                                                target(checkpoint, gpu="cpu", tensorrt="none",
                                                       precision="fp32")))
    assert out[1].startswith("build: ")
    forced = subprocess.run([*args, "--force"], capture_output=True, text=True, check=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout.splitlines()
    assert forced[1] == "rebuild: FORCE_BUILD is set"
