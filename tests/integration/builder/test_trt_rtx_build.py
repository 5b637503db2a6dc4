"""Real TensorRT for RTX ahead-of-time builds, on this machine without a GPU: the default
model and every family's tiny checkpoint, fp32 and fp16, each built once per session. The
plans cannot be deserialised here (that needs a GPU); what is checked is what the builder
controls: the parser accepts every graph, one plan per graph, profiles that cover the
parsed network's inputs, the recorded targets, and the refusals."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from builder import build as build_module
from builder.__main__ import main
from builder.compile import (RTX_DEFAULT_TARGETS, CompileError, CompileOptions, _parse,
                             compile_plans, network_inputs)
from runtime.backends.trt_plan import RTX_COMPUTE_CAPABILITIES
from runtime.artifact.manifest import Graph, Manifest
from tests.helpers import build_artifact

rtx = pytest.importorskip("tensorrt_rtx_bindings")
FAMILIES = ("bert", "qwen3", "gte_qwen2", "e5_mistral", "clip", "gme", "cross_encoder",
            "qwen3_reranker", "splade", "bge_m3", "colbert")
TOWERS = {"clip": {"text", "image"}, "gme": {"text", "image"}}


@pytest.fixture(scope="session")
def checkpoints(minilm_path: Path, tiny_decoder_paths: dict[str, Path],
                tiny_multimodal_paths: dict[str, Path],
                reranker_paths: dict[str, Path],
                heads_paths: dict[str, Path]) -> dict[str, Path]:
    return {"bert": minilm_path, **tiny_decoder_paths, **tiny_multimodal_paths,
            **reranker_paths, **heads_paths}


@pytest.fixture(scope="module")
def rtx_build(tmp_path_factory: pytest.TempPathFactory,
              checkpoints: dict[str, Path]) -> Iterator[Callable[[str, str], tuple[Path, float]]]:
    """(family, precision) -> (artifact, wall seconds of the whole build), built once."""
    built: dict[tuple[str, str], tuple[Path, float]] = {}
    root = tmp_path_factory.mktemp("rtx")

    def get(family: str, precision: str) -> tuple[Path, float]:
        if (family, precision) not in built:
            start = time.perf_counter()
            artifact = build_artifact(checkpoints[family], root / f"{family}-{precision}",
                                      precision=precision, backend="tensorrt-rtx")
            built[family, precision] = (artifact, time.perf_counter() - start)
        return built[family, precision]

    yield get
    shutil.rmtree(root)  # the plans (hundreds of MB) are not needed past this module


def parsed_inputs(onnx_path: Path) -> dict[str, tuple[int, ...]]:
    """The network's inputs as the RTX parser sees them (-1: dynamic); raises on errors."""
    logger = rtx.Logger(rtx.Logger.ERROR)
    builder = rtx.Builder(logger)
    network, _parser = _parse(rtx, builder, logger, onnx_path)
    ranks = dict(network_inputs(network))
    shapes = {network.get_input(i).name: tuple(network.get_input(i).shape)
              for i in range(network.num_inputs)}
    assert {k: len(v) for k, v in shapes.items()} == ranks
    return shapes


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_builds_a_plan_per_graph(family: str, precision: str,
                                             rtx_build: Callable) -> None:
    artifact, seconds = rtx_build(family, precision)
    manifest = Manifest.load(artifact)
    record = manifest.tensorrt
    assert record is not None and manifest.precision == record.precision == precision
    assert (record.flavour, record.version) == ("tensorrt-rtx", rtx.__version__)
    assert record.compute_capabilities == RTX_DEFAULT_TARGETS and record.gpu_name is None
    assert set(record.plans) == set(manifest.graphs) == TOWERS.get(family, {"text"})
    assert sorted(p.name for p in artifact.glob("*.plan")) == sorted(
        p.file for p in record.plans.values())
    for tower, plan in record.plans.items():
        assert (artifact / plan.file).stat().st_size > 0
        assert 0 < plan.build_seconds < seconds
        network = parsed_inputs(artifact / manifest.graphs[tower].onnx)
        for profile in plan.profiles:
            shapes = dict(profile.shapes)
            assert {k: len(r.min) for k, r in shapes.items()} == {
                k: len(v) for k, v in network.items()}, profile.name
            for name, dims in network.items():  # static axes pinned, dynamic ones ranged
                for axis, size in enumerate(dims):
                    rng = shapes[name]
                    if size != -1:
                        assert rng.min[axis] == rng.opt[axis] == rng.max[axis] == size
        assert graph_io_types(artifact / manifest.graphs[tower].onnx) <= {"FLOAT", "INT64"}
        # each profile's memory estimate and TensorRT's own activation figure are recorded
        assert set(plan.memory_bytes) == {p.name for p in plan.profiles}
        assert all(v > 0 for v in plan.memory_bytes.values())
        assert plan.tensorrt_memory["activation_bytes"] > 0
        assert plan.attention in ("fused", "materialised", "undetermined")
        for profile in plan.profiles:  # boxes within 2x the default 16384-token budget
            if "sequence" in manifest.graphs[tower].inputs[profile.shapes[0][0]]:
                assert profile.max_batch * profile.max_seq <= 2 * 16384
    checked = manifest.verification
    if manifest.spec.is_reranker:  # scores against CrossEncoder.predict
        assert checked["max_abs_diff"] <= checked["tolerance"]
    else:
        assert checked["min_cosine"] >= checked["threshold"]


def graph_io_types(onnx_path: Path) -> set[str]:
    """Element types of a graph's inputs and outputs: float32 at every precision (the
    runtime feeds float32 pixels and image rows and reads float32 vectors)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return {onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
            for v in (*graph.input, *graph.output)}


def test_targets_are_passed_to_the_builder(rtx_build: Callable, tmp_path: Path,
                                           checkpoints: dict[str, Path]) -> None:
    """The plan names the architectures it was compiled for: sm80 by default (the library's
    portable base for 8.0 and later), exactly the requested ones otherwise."""
    default, _ = rtx_build("qwen3", "fp32")
    assert b"sm80" in (default / "text.plan").read_bytes()
    opts = CompileOptions(flavour="tensorrt-rtx", compute_capabilities=("8.9", "12.0"))
    artifact = build_artifact(checkpoints["qwen3"], tmp_path / "targets",
                              backend="tensorrt-rtx", compile_options=opts)
    record = Manifest.load(artifact).tensorrt
    assert record is not None and record.compute_capabilities == ("8.9", "12.0")
    plan = (artifact / "text.plan").read_bytes()
    assert b"sm89" in plan and b"sm120" in plan and b"sm80" not in plan


def test_unknown_compute_capability_lists_the_valid_ones(
        tmp_path: Path, checkpoints: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "never"
    code = main(["--model-path", str(checkpoints["qwen3"]), "--output", str(out),
                 "--backend", "tensorrt-rtx", "--compute-capability", "8.9",
                 "--compute-capability", "9.0"])
    assert code == 1 and not out.exists()
    assert ("error: unknown compute capability 9.0: TensorRT for RTX targets "
            + ", ".join(RTX_COMPUTE_CAPABILITIES)) in capsys.readouterr().err
    with pytest.raises(CompileError, match="--compute-capability is for --backend tensorrt-rtx"):
        build_artifact(checkpoints["qwen3"], out, backend="tensorrt",
                       compile_options=CompileOptions(compute_capabilities=("8.9",)))


def unique_graph(path: Path) -> Path:
    """A valid ONNX graph whose one node (Unique) TensorRT for RTX cannot import."""
    from onnx import TensorProto, helper, save_model

    node = helper.make_node("Unique", ["input_ids"], ["embeddings"], name="dedupe_ids")
    graph = helper.make_graph(
        [node], "rejected", [helper.make_tensor_value_info("input_ids", TensorProto.FLOAT,
                                                           ["batch", "sequence"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, str(path))
    return path


def test_a_rejected_graph_names_its_node_and_publishes_nothing(
        tmp_path: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def export_rejected(family: Any, checkpoint: Any, spec: Any, out: Path,
                        *args: Any) -> dict[str, Graph]:
        unique_graph(out / "model.onnx")
        return {"text": Graph("model.onnx", {"input_ids": ["batch", "sequence"]},
                              {"embeddings": ["n"]})}

    monkeypatch.setattr(build_module.export, "export_graphs", export_rejected)
    monkeypatch.setattr(build_module, "_verify", lambda *args: {})  # straight to TensorRT
    monkeypatch.setattr(build_module.calibration, "calibrate", lambda *args: None)
    out = tmp_path / "rejected"
    with pytest.raises(CompileError, match=r"node 'dedupe_ids' \(operator Unique\)"):
        build_artifact(checkpoints["qwen3"], out, backend="tensorrt-rtx")
    assert list(tmp_path.iterdir()) == []  # neither the artifact nor its staging dir


def test_compile_plans_alone_refuses_the_graph(tmp_path: Path) -> None:
    from models.spec import ModelSpec

    unique_graph(tmp_path / "bad.onnx")
    spec = ModelSpec(family="bert", architecture="x", pooling="mean", dims=4, max_len=16,
                     inputs=("input_ids",))
    graphs = {"text": Graph("bad.onnx", {"input_ids": ["batch", "sequence"]}, {})}
    with pytest.raises(CompileError, match="could not parse bad.onnx: node 'dedupe_ids'"):
        compile_plans(graphs, spec, "fp32", tmp_path,
                      CompileOptions(flavour="tensorrt-rtx"))
    assert not list(tmp_path.glob("*.plan"))


def test_tensorrt_11_without_its_libraries_fails_before_exporting(
        tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    from builder.compile import import_flavour
    from runtime.backends.trt_plan import FLAVOURS
    from runtime.errors import MissingDependencyError

    try:
        import_flavour(FLAVOURS["tensorrt"])
    except MissingDependencyError:
        pass
    else:
        pytest.skip("TensorRT 11 loads here: it would build on this machine's GPU")
    start = time.perf_counter()
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[tensorrt\]'"):
        build_artifact(checkpoints["qwen3"], tmp_path / "trt11", backend="tensorrt")
    assert time.perf_counter() - start < 5 and list(tmp_path.iterdir()) == []
