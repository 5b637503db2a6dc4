"""One family at its real hub widths (gme-Qwen2-VL-2B: hidden 1536, 12 heads, vocabulary
151936, 1800 tokens; vision 1280 wide, 16 heads, 1280-token images), one layer, random weights:
the fp32 build with default flags (TensorRT for RTX's default 32 GiB budget) that TensorRT
for RTX refused before the profiles were bounded (64 rows x 1800 tokens) and the workspace
sized, and the --gpu-memory-gib refusal before any export. The other families' real shapes: `make trt-real-shapes` (BENCHMARKS.md)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.__main__ import main
from builder.memory import Box, activation_need, widths, read_config
from runtime.artifact.manifest import Manifest
from devtools.checkpoints.real_shapes import gme
from tests.helpers import build_artifact

rtx = pytest.importorskip("tensorrt_rtx_bindings")
BUDGET = 16384  # the default --max-batch-tokens


@pytest.fixture(scope="module")
def gme_real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("real")
    yield gme(root / "gme")
    shutil.rmtree(root)  # 2.2 GB of random weights: gone before the next module starts


def test_a_build_over_the_gpu_budget_fails_before_exporting(
        gme_real: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "never"
    start = time.perf_counter()
    code = main(["--model-path", str(gme_real), "--output", str(out), "--backend",
                 "tensorrt-rtx", "--gpu-memory-gib", "16"])
    assert code == 1 and not out.exists() and list(tmp_path.iterdir()) == []
    assert time.perf_counter() - start < 30  # fingerprint and config only: no export
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    # fp32 at 1 layer: the text buckets are cut to what fits (6 rows of 1800 tokens, not 15),
    # but one packed image of 5120 patches holds 16 heads x 5120^2 unfused scores
    assert errors[0].endswith(
        "profile image/all needs 16.2 GiB (2.1 GiB weights + 2 contexts x 7.0 GiB for 1 rows "
        "x 5120 tokens), over the --gpu-memory-gib 16 budget: one row of 5120 tokens needs "
        "7.0 GiB: build fp16/bf16 or raise --gpu-memory-gib"), errors[0]


@pytest.mark.slow
def test_gme_fp32_at_real_widths_builds_with_default_flags(gme_real: Path,
                                                           tmp_path: Path) -> None:
    artifact = build_artifact(gme_real, tmp_path / "gme", precision="fp32",
                              backend="tensorrt-rtx")
    manifest = Manifest.load(artifact)
    record = manifest.tensorrt
    assert record is not None and set(record.plans) == {"text", "image"}
    text = record.plans["text"]
    assert [p.name for p in text.profiles] == [f"seq{e}" for e in (128, 256, 512, 1024, 1800)]
    for profile in text.profiles:  # every box within 2x the token budget
        assert profile.max_batch * profile.max_seq <= 2 * BUDGET
    # fitted to TensorRT for RTX's default 32 GiB: fp32's unfused scores leave 14 rows of 1800
    # tokens (the token budget alone allows 15); the context stays 1800
    assert record.gpu_memory_gib == 32.0 and manifest.spec.max_len == 1800
    assert [p.max_batch for p in text.profiles] == [64, 64, 63, 31, 14]
    assert set(text.memory_bytes) == {p.name for p in text.profiles}
    # TensorRT's own figure, sized at the largest profile's opt shape, against the estimate
    # there: an upper bound for unfused fp32 attention (builder/memory.py)
    measured = text.tensorrt_memory["activation_bytes"]
    w = widths(read_config(gme_real), "text")
    at_opt = max(activation_need(Box("text", p.name, *p.first.opt), w, "fp32").activations
                 for p in text.profiles)
    # (5.56e9 measured with 15 rows at seq1800; 5.19e9 with the 14 the 32 GiB budget leaves:
    # TensorRT's tactics move with the box)
    assert 1.0 < at_opt / measured < 1.75, (at_opt, measured)
    assert record.workspace_mib >= measured >> 20  # the pool holds what TensorRT needed
    # fp32: TensorRT's 5.2 GiB exceeds one 11 x 12 x 1416^2 float score tensor (1.1 GB)
    assert text.attention == "materialised"
    image = record.plans["image"]
    assert image.tensorrt_memory["activation_bytes"] > 0 and image.memory_bytes["all"] > 0
    assert manifest.verification["min_cosine"] >= manifest.verification["threshold"]
