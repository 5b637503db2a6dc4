"""Reduced-precision export: fp16 verified on ONNX Runtime CPU against sentence-transformers;
bf16 (no ONNX Runtime CPU kernels) named op by op and verified through torch."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from builder.precision import PRECISIONS, unsupported_ops
from runtime.artifact.manifest import Manifest
from tests.helpers import assert_parity, build_artifact, st_reference

TEXTS = ["How do I bake sourdough bread?", "TensorRT compiles ONNX graphs for NVIDIA GPUs.",
         "short", "Der schnelle braune Fuchs springt über den faulen Hund. " * 6]


@pytest.fixture(scope="module")
def minilm_fp16(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    return build_artifact(minilm_path, tmp_path_factory.mktemp("fp16") / "minilm",
                          precision="fp16")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    """A 2-layer random BERT with MiniLM's tokenizer (mean pooling, normalised)."""
    from devtools.checkpoints.tiny_bert import tiny_bert as make

    return make(tmp_path_factory.mktemp("tiny") / "bert", minilm_path, normalize=True)


def graph_types(onnx_path: Path) -> collections.Counter:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    return collections.Counter((n.op_type, onnx.TensorProto.DataType.Name(types[n.input[0]]))
                               for n in model.graph.node if n.input and n.input[0] in types)


def test_precisions_are_a_registry() -> None:
    assert list(PRECISIONS) == ["fp32", "fp16", "bf16", "int8"]
    assert PRECISIONS["fp16"].min_cosine == 0.999


def test_fp16_graph_keeps_norms_softmax_pooling_fp32(minilm_fp16: Path) -> None:
    ops = graph_types(minilm_fp16 / "model.onnx")
    assert ops[("MatMul", "FLOAT16")] >= 36 and ops[("MatMul", "FLOAT")] == 0
    assert ops[("LayerNormalization", "FLOAT")] == 13 and ops[("LayerNormalization", "FLOAT16")] == 0
    assert ops[("Softmax", "FLOAT")] == 6 and ops[("Softmax", "FLOAT16")] == 0
    assert ops[("ReduceSum", "FLOAT")] >= 1 and ops[("ReduceSum", "FLOAT16")] == 0  # mean pool


def test_fp16_runs_on_onnxruntime_cpu_and_matches_sentence_transformers(
        minilm_fp16: Path, minilm_path: Path) -> None:
    from builder.verify import run_artifact

    manifest = Manifest.load(minilm_fp16)
    assert manifest.precision == "fp16" and manifest.tensorrt is None
    assert manifest.verification["method"] == "onnxruntime"
    assert manifest.verification["onnxruntime_cpu_unsupported"] == []
    assert manifest.verification["min_cosine"] >= 0.999
    ours = run_artifact(minilm_fp16, TEXTS)
    assert ours.dtype == np.float32
    assert_parity(ours, st_reference(minilm_path, TEXTS), min_cosine=0.999)
    assert unsupported_ops(minilm_fp16 / "model.onnx") == []


def test_bf16_names_missing_kernels_and_verifies_in_torch(tiny_bert: Path, tmp_path: Path) -> None:
    artifact = build_artifact(tiny_bert, tmp_path / "bf16", precision="bf16")
    manifest = json.loads((artifact / "manifest.json").read_text())
    check = manifest["verification"]
    assert check["method"] == "torch" and check["min_cosine"] >= 0.999
    # What ONNX Runtime 1.32's CPU provider lacks for this graph, measured op by op:
    assert {"MatMul on bfloat16 (opset 17)", "Add on bfloat16 (opset 17)"} <= set(
        check["onnxruntime_cpu_unsupported"])
    ops = graph_types(artifact / "model.onnx")
    assert ops[("MatMul", "BFLOAT16")] > 0 and ops[("LayerNormalization", "FLOAT")] == 5


@pytest.mark.parametrize("family", ["qwen3", "gte_qwen2", "e5_mistral"])
def test_decoder_fp16_export_passes_its_gate_on_onnx_runtime(
        family: str, tiny_decoder_paths: dict[str, Path], tmp_path: Path) -> None:
    """The decoder families' TensorRT precision: RMSNorms and pooling stay fp32, the build's
    gate (cosine >= 0.999 to the fp32 reference) runs the fp16 graph on ONNX Runtime CPU."""
    artifact = build_artifact(tiny_decoder_paths[family], tmp_path / family, precision="fp16")
    manifest = Manifest.load(artifact)
    assert manifest.precision == "fp16"
    assert manifest.verification["method"] == "onnxruntime"
    assert manifest.verification["threshold"] == 0.999
    assert manifest.verification["min_cosine"] >= 0.999
    types = graph_types(artifact / "model.onnx")
    assert types[("MatMul", "FLOAT16")] > 0
    assert types[("MatMul", "FLOAT")] == 0 or types[("MatMul", "FLOAT16")] > types[("MatMul", "FLOAT")]
