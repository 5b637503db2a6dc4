"""bench/gpu.py imports without a GPU, TensorRT or torch; its planning maths is pure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import gpu
from tests.helpers import ROOT


def test_importing_the_gpu_benchmark_loads_no_gpu_library() -> None:
    # A fresh interpreter: other tests in this session may import the bindings themselves.
    code = ("import sys, bench.gpu; heavy = {'tensorrt', 'tensorrt_bindings', 'torch', "
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


def test_eager_baseline_runs_every_tower_on_tiny_models(capsys: pytest.CaptureFixture) -> None:
    """The GPU baseline's whole path (configs -> transformers models -> timed rows), on CPU."""
    from bench import gpu_eager

    assert gpu_eager.main(["--tiny", "--families", "bert,clip,gme", "--seconds", "0.01"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "---" not in line][1:]
    shapes = [(name.strip(), int(batch), int(seq)) for name, batch, seq, *_ in rows]
    assert shapes == [
        ("bert (bge-large-en-v1.5) text", 1, 32), ("bert (bge-large-en-v1.5) text", 32, 128),
        ("bert (bge-large-en-v1.5) text", 128, 512),
        # CLIP's text tower stops at its 77 positions; its vision tower: 4x4 patches + CLS.
        ("clip (clip-vit-large-patch14-336) text", 1, 32),
        ("clip (clip-vit-large-patch14-336) text", 32, 77),
        ("clip (clip-vit-large-patch14-336) text", 128, 77),
        ("clip (clip-vit-large-patch14-336) vision", 1, 17),
        ("clip (clip-vit-large-patch14-336) vision", 32, 17),
        ("clip (clip-vit-large-patch14-336) vision", 128, 17),
        ("gme (gme-Qwen2-VL-2B-Instruct) text", 1, 32), ("gme (gme-Qwen2-VL-2B-Instruct) text", 32, 128),
        ("gme (gme-Qwen2-VL-2B-Instruct) text", 128, 512)]
    assert all(float(r[3].replace(",", "")) > 0 for r in rows)


def test_shrink_keeps_structure_and_only_known_keys() -> None:
    from bench.gpu_eager import shrink

    small = shrink(gpu.FAMILY_CONFIGS["clip (clip-vit-large-patch14-336)"])
    assert small["text_config"]["hidden_size"] == 64 and small["vision_config"]["patch_size"] == 8
    assert "num_key_value_heads" not in small["text_config"]
    assert small["model_type"] == "clip"
