"""The startup memory check (server/memory_fit.py): the ONNX Runtime batch estimate is the
builder's own fp32 estimate for BERT-shaped widths, the refusal sums every model on a device
and names each, and a TensorRT model counts its plans and one activation figure per
context."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from builder.memory import Box, Widths, activation_need
from runtime.artifact import Artifact
from runtime.backends.trt_plan import GraphPlan
from server.config import ServerConfig
from server.memory_fit import CPU, GIB, GPU, Need, _trt_need, activation_bytes, refusal
from tests.unit.runtime.test_artifact_cache import write_manifest


@pytest.mark.parametrize("rows, seq, hidden", [(2, 256, 384), (64, 512, 768), (1, 8192, 1024)])
def test_batch_estimate_is_the_builders_fp32_estimate(rows: int, seq: int, hidden: int) -> None:
    """builder/memory.py at fp32 (attention unfused) for widths with intermediate = 4 x
    hidden and 64-wide heads: the same bytes."""
    builder = activation_need(Box("text", "p", rows, seq), Widths(hidden, 4 * hidden,
                                                                  hidden // 64, 12), "fp32")
    assert activation_bytes(rows * seq, seq, hidden) == builder.activations


def test_models_that_fit_pass_and_the_refusal_names_each() -> None:
    needs = [Need("emb", CPU, GIB, GIB // 2), Need("rr", CPU, GIB // 2, GIB),
             Need("gpu-model", GPU, 10 * GIB, 0)]
    assert refusal(needs, {CPU: 3 * GIB, GPU: 10 * GIB}) is None
    assert refusal(needs, {CPU: 3 * GIB}) is None  # an unmeasured device is not checked
    line = refusal(needs, {CPU: 3 * GIB - 1, GPU: 80 * GIB})
    assert line == ("the models need 3.00 GiB of RAM but 3.00 GiB is available (emb 1.50 GiB "
                    "(weights 1.00 + largest batches 0.50), rr 1.50 GiB (weights 0.50 + "
                    "largest batches 1.00)); serve fewer models, lower --max-batch-tokens / "
                    "--max-batch-size or the batches in flight, or set --memory-budget-gib")
    assert "of GPU memory" in (refusal(needs, {GPU: GIB}) or "")


def test_a_tensorrt_model_counts_its_plans_and_each_context(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    art = Artifact.open(write_manifest(tmp_path / "art", tmp_path / "ckpt"))
    (art.path / "text.plan").write_bytes(b"\0" * 1000)
    config = ServerConfig(artifact=art, model_path="m", served_model_name="m")
    estimated = GraphPlan("text.plan", (), memory_bytes={"a": 300, "b": 700})
    need = _trt_need(config, {"text": estimated})
    assert (need.device, need.weights, need.activations) == (GPU, 1000, 2 * 700)
    measured = dataclasses.replace(estimated, tensorrt_memory={"activation_bytes": 500})
    three = dataclasses.replace(config, runtime=dataclasses.replace(config.runtime,
                                                                    trt_contexts=3))
    assert _trt_need(three, {"text": measured}).activations == 3 * 500
