"""Fitting a TensorRT build to its GPU before export (builder/fit.py): fp32's unfused
attention sizes its buckets' rows and cuts the maximum input to what one row's scores fit;
fp16 (fused) keeps the model's context and is only checked. Real hub widths, a sparse
stand-in weights file of the real size (checkpoint_weights reads file sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder import fit, memory
from builder.compile import CompileOptions
from builder.memory import GIB, Box, activation_need, fit_max_len, unfused_rows, widths
from builder.profiles import graph_profiles
from models.spec import ModelSpec
from runtime.artifact.manifest import BuildLimits
from tests.unit.builder.test_memory import QWEN3_4B

QWEN = ModelSpec(family="qwen3", architecture="Qwen3ForCausalLM", pooling="last", dims=2560,
                 max_len=32768)
TEXT_AXES = {"input_ids": ("batch", "sequence"), "attention_mask": ("batch", "sequence")}


@pytest.fixture
def qwen3_4b(tmp_path: Path) -> Path:
    """Qwen3-Embedding-4B's config and a sparse 8 GB bfloat16 weights file (4B parameters)."""
    (tmp_path / "config.json").write_text(json.dumps({**QWEN3_4B, "torch_dtype": "bfloat16"}))
    with open(tmp_path / "model.safetensors", "wb") as f:
        f.truncate(8 * 10**9)
    return tmp_path


def test_fp32_rows_shrink_where_scores_outgrow_the_token_budget() -> None:
    w = widths(QWEN3_4B, "text")
    room = 20 * GIB
    rows_at = unfused_rows(w, "fp32", room)
    assert rows_at is not None and unfused_rows(w, "fp16", room) is None
    assert unfused_rows(w, "fp32", 0) is None  # no budget stated: token budget only
    spec = ModelSpec(family="qwen3", architecture="Qwen3ForCausalLM", pooling="last",
                     dims=2560, max_len=fit_max_len(rows_at, 32768))
    plain = graph_profiles(TEXT_AXES, spec, BuildLimits(64, 16384))
    sized = graph_profiles(TEXT_AXES, spec, BuildLimits(64, 16384), rows_at)
    assert [p.name for p in sized] == [p.name for p in plain]
    for before, after in zip(plain, sized):
        assert 1 <= after.max_batch <= before.max_batch
        need = activation_need(Box("text", after.name, after.max_batch, after.max_seq), w,
                               "fp32")
        assert need.activations <= room or after.max_batch == 1
        assert after.first.opt[0] <= after.max_batch
    assert sized[0].max_batch == plain[0].max_batch == 64  # short rows: the token budget binds
    assert sized[-1].max_batch < plain[-1].max_batch  # long rows: the scores bind


def test_fit_max_len_is_the_longest_row_that_fits() -> None:
    w = widths(QWEN3_4B, "text")
    rows_at = unfused_rows(w, "fp32", 20 * GIB)
    assert rows_at is not None
    cap = fit_max_len(rows_at, 32768)
    assert cap % 8 == 0 and rows_at(cap) == 1 and rows_at(cap + 8) == 0
    # 32 heads x cap^2 cells at 16 bytes (+ the body) within 20 GiB: about 6,000 tokens
    assert 5000 < cap < 6500
    assert fit_max_len(rows_at, 512) == 512  # short models keep their length
    assert fit_max_len(lambda seq: 0, 512) == 0


def test_fp32_build_is_cut_to_the_budget_and_says_so(
        qwen3_4b: Path, capsys: pytest.CaptureFixture) -> None:
    spec, opts = fit.fit(qwen3_4b, QWEN, CompileOptions(gpu_memory_gib=80), "fp32",
                         "tensorrt-rtx")
    weights = 16 * 10**9  # bf16 stored, fp32 built
    assert opts.gpu_memory_gib == 80 and opts.context_room == (80 * GIB - weights) // 2
    rows_at = unfused_rows(widths(QWEN3_4B, "text"), "fp32", opts.context_room)
    assert rows_at is not None and spec.max_len == fit_max_len(rows_at, 32768) < 32768
    assert 7900 < spec.max_len < 8000  # the README's "about 8,000 tokens" on an 80 GiB GPU
    log = capsys.readouterr().err
    assert "memory budget: 80 GiB (--gpu-memory-gib)" in log
    assert f"at most {spec.max_len} tokens" in log and "the model's 32768 needs fp16/bf16" in log
    # every profile of the cut spec fits the budget: the check that follows passes
    found = memory.needs(QWEN3_4B, spec, BuildLimits(64, 16384), "fp32", opts.context_room)
    assert memory.check_budget(found, weights, "fp32", 80) is None


def test_fp16_keeps_the_context_and_an_oversize_build_is_refused(qwen3_4b: Path) -> None:
    spec, opts = fit.fit(qwen3_4b, QWEN, CompileOptions(gpu_memory_gib=24), "fp16",
                         "tensorrt-rtx")
    assert spec == QWEN and opts.gpu_memory_gib == 24
    # fused: one row of the full context needs 4.8 GiB per context; nothing but a larger GPU
    with pytest.raises(fit.FitError, match=r"^profile text/seq32768 needs 17.1 GiB .* over the "
                       r"--gpu-memory-gib 12 budget: one row of 32768 tokens needs 4.8 GiB: "
                       r"raise --gpu-memory-gib \(a larger GPU\)$"):
        fit.fit(qwen3_4b, QWEN, CompileOptions(gpu_memory_gib=12), "fp16", "tensorrt-rtx")
    with pytest.raises(fit.FitError, match="weights alone need 14.9 GiB"):
        fit.fit(qwen3_4b, QWEN, CompileOptions(gpu_memory_gib=12), "fp32", "tensorrt-rtx")


def test_budget_defaults(qwen3_4b: Path) -> None:
    # no GPU on this machine: TensorRT for RTX's default, named; 0 turns fitting off
    assert fit.budget_gib(None, "tensorrt-rtx")[0] == memory.RTX_DEFAULT_GIB
    assert fit.budget_gib(0.0, "tensorrt-rtx") == (0.0, "--gpu-memory-gib 0: no memory check")
    assert fit.budget_gib(48.0, "tensorrt") == (48.0, "--gpu-memory-gib")
    spec, opts = fit.fit(qwen3_4b, QWEN, CompileOptions(gpu_memory_gib=0), "fp32",
                         "tensorrt-rtx")
    assert spec == QWEN and opts.context_room == 0


def test_one_row_of_128_tokens_that_cannot_fit_is_refused(qwen3_4b: Path) -> None:
    with pytest.raises(fit.FitError, match="one row of 128 tokens does not fit"):
        fit.cap_context(QWEN, QWEN3_4B, "fp32", 1 << 20)  # 1 MiB per context
