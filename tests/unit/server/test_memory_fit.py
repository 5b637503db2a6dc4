"""The startup memory check (server/memory_fit.py): the ONNX Runtime batch estimate is the
builder's own fp32 estimate for BERT-shaped widths, the refusal sums every model on a device
and names each, and a TensorRT model counts its plans and one activation figure per
context."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from builder.memory import Box, Widths, activation_need
from runtime.artifact import Artifact
from runtime.backends.trt_plan import GraphPlan
from server.config import ServerConfig
from runtime.errors import MissingDependencyError
from runtime.settings import DEFAULT_BATCH_TOKENS
from server.memory_fit import (CPU, GIB, GPU, Need, _ort_need, _trt_need, activation_bytes,
                               measured_budgets, refusal)
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


def test_onnxruntime_cuda_holds_a_weights_copy_per_session(tmp_path: Path) -> None:
    """On ONNX Runtime CUDA each batch in flight is a session with its own weights: a small
    graph gets two (ort_cuda.default_sessions), --batches-in-flight sets them, and every
    session's largest batch is the token budget's."""
    (tmp_path / "ckpt").mkdir()
    art = Artifact.open(write_manifest(tmp_path / "art", tmp_path / "ckpt"))
    (art.path / "model.onnx").write_bytes(b"\0" * 1000)
    (art.path / "model.onnx.data").write_bytes(b"\0" * 3000)
    config = ServerConfig(artifact=art, model_path="m", served_model_name="m")
    need = _ort_need(config, on_gpu=True)
    one_batch = activation_bytes(DEFAULT_BATCH_TOKENS, 16, 8)  # the spec's max_len is 16
    assert (need.device, need.weights, need.activations) == (GPU, 2 * 4000, 2 * one_batch)
    flags = dataclasses.replace(config.runtime.batch, concurrency=3, max_batch_tokens=64)
    three = dataclasses.replace(config, runtime=dataclasses.replace(config.runtime,
                                                                    batch=flags))
    need = _ort_need(three, on_gpu=True)
    assert (need.weights, need.activations) == (3 * 4000, 3 * activation_bytes(64, 16, 8))


def test_the_gpu_budget_is_its_free_memory_and_an_unreadable_gpu_is_not_checked(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from runtime.backends import gpu

    monkeypatch.setattr(gpu, "free_memory", lambda device=0: 7 * GIB)
    assert measured_budgets({GPU}) == {GPU: 7 * GIB}

    def no_gpu(device: int = 0) -> int:
        raise MissingDependencyError("cuda-python is not installed")

    monkeypatch.setattr(gpu, "free_memory", no_gpu)
    with caplog.at_level(logging.WARNING, logger="server"):
        budgets = measured_budgets({GPU, CPU})
    assert set(budgets) == {CPU} and budgets[CPU] > 0
    assert "GPU memory not checked: cuda-python is not installed" in caplog.text
