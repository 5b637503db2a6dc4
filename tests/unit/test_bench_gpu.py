"""tests/bench/gpu.py imports without a GPU, TensorRT or torch; its planning maths is pure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.bench import gpu
from tests.helpers import ROOT


def test_importing_the_gpu_benchmark_loads_no_gpu_library() -> None:
    # A fresh interpreter: other tests in this session may import the bindings themselves.
    code = ("import sys, tests.bench.gpu; heavy = {'tensorrt', 'tensorrt_bindings', 'torch', "
            "'cuda'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize(("name", "flops", "bandwidth"), [
    ("NVIDIA H100 80GB HBM3", 989e12, 3.35e12), ("NVIDIA H100 PCIe", 756e12, 2.0e12),
    ("NVIDIA H200", 989e12, 4.8e12), ("NVIDIA L4", 121e12, 0.3e12),
    ("NVIDIA A10G", 125e12, 0.6e12)])
def test_gpu_peaks_match_the_most_specific_name(name: str, flops: float,
                                                bandwidth: float) -> None:
    assert gpu.gpu_peaks(name) == (flops, bandwidth)


def test_unknown_gpu_asks_for_the_figures() -> None:
    with pytest.raises(ValueError, match="--peak-tflops"):
        gpu.gpu_peaks("Radeon 9000")


def test_sweep_covers_each_profile_top_and_respects_max_batch() -> None:
    assert gpu.sweep(32, (64, 256), 512, [1, 8, 32, 128]) == [
        (1, 64), (8, 64), (32, 64), (1, 256), (8, 256), (32, 256), (1, 512), (8, 512),
        (32, 512)]
    assert gpu.sweep(8, (), 128, [1, 8, 32]) == [(1, 128), (8, 128)]


def test_synthetic_feeds_are_full_rows_of_valid_ids() -> None:
    feeds = gpu.synthetic_feeds(4, 16, 30522)
    assert feeds["input_ids"].shape == feeds["attention_mask"].shape == (4, 16)
    assert feeds["input_ids"].min() >= 1000 and feeds["input_ids"].max() < 30522
    assert feeds["attention_mask"].all()


def test_roofline_only_prints_every_family_without_a_gpu(capsys: pytest.CaptureFixture) -> None:
    assert gpu.main(["--roofline-only", "--device-name", "NVIDIA H200"]) == 0
    out = capsys.readouterr().out
    assert "4.80 TB/s" in out
    for family in gpu.FAMILY_CONFIGS:
        assert f"| {family} | text |" in out
    assert "| clip (clip-vit-large-patch14-336) | vision | 0.30 B | 0.66 @ 577 |" in out
