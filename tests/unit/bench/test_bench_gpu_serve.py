"""bench.gpu_serve's pure half: arguments, the four targets, the BENCHMARKS_GPU.md section;
and on this machine (no GPU) the one line it exits with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu_serve import parse_args
from bench.gpu_serve_report import Row, judge, render, server_name
from tests.helpers import ROOT


def rows(server64: float = 400_000, rps: float = 6000, p99: float = 20.0,
         busy: float | None = 85.0) -> list[Row]:
    return [
        Row("raw engine, batch 64", 500_000), Row("raw engine, batch 256", 900_000),
        Row("sentence-transformers fp16, batch 64", 120_000),
        Row("sentence-transformers fp16, batch 256", 200_000),
        Row(server_name(64, 8, "float"), server64, 190.0, 40.0, 61.5, 72.0, 180.0),
        Row(server_name(1, 64, "float"), 180_000, rps, 9.0, p99, 40.0, 195.0),
        Row(server_name(256, 4, "float"), 700_000, 80.0, 48.0, 70.0, busy, 150.0),
    ]


def test_all_targets_met() -> None:
    verdicts = judge(rows())
    assert [v.met for v in verdicts] == [True, True, True, True]
    assert [v.measured for v in verdicts] == ["80%", "3.33x", "6000 req/s, p99 20.0 ms", "85%"]


def test_each_target_missed_on_its_own_number() -> None:
    assert [v.met for v in judge(rows(server64=340_000))] == [False, False, True, True]
    assert judge(rows(server64=349_999))[0].met is False  # 69.99% of 500k
    assert judge(rows(server64=360_000))[1].met is True and judge(rows(server64=359_999))[1].met is False
    assert [v.met for v in judge(rows(rps=4999))] == [True, True, False, True]
    assert [v.met for v in judge(rows(p99=50.1))] == [True, True, False, True]
    no_smi = judge(rows(busy=None))[3]
    assert not no_smi.met and no_smi.measured == "n/a (no nvidia-smi)"


def test_render_writes_machine_table_and_targets() -> None:
    text = render(rows(busy=65.0), judge(rows(busy=65.0)),
                  {"GPU": "NVIDIA H200", "onnxruntime-gpu": "1.31.1"})
    lines = text.splitlines()
    assert lines[0] == "## Serving on ONNX Runtime CUDA (`python -m bench.gpu_serve`)"
    assert "- GPU: NVIDIA H200" in lines and "- onnxruntime-gpu: 1.31.1" in lines
    assert "| raw engine, batch 64 | 500,000 | - | - | - | - | - |" in lines
    assert "| server 1 x 64 (float) | 180,000 | 6,000 | 9.0 | 20.0 | 40 | 195 |" in lines
    assert "| GPU busy >= 70% under 256-sentence load | 65% | NO |" in lines
    assert "| server 64 x 8 >= 70% of the raw engine's tokens/s (batch 64) | 80% | yes |" in lines


def test_arguments() -> None:
    args = parse_args([])
    assert (args.model_path, args.artifact, args.output, args.seconds) == (
        None, None, Path("BENCHMARKS_GPU.md"), 5.0)
    args = parse_args(["--artifact", "a", "--output", "o.md", "--server-args",
                       "--batches-in-flight 3", "--seconds", "2"])
    assert (args.artifact, args.output, args.server_args, args.seconds) == (
        Path("a"), Path("o.md"), "--batches-in-flight 3", 2.0)
    with pytest.raises(SystemExit):
        parse_args(["--seconds", "0"])


def test_without_cuda_it_exits_with_one_line(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    out = tmp_path / "B.md"
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_serve", "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("bench.gpu_serve needs a CUDA GPU and onnxruntime-gpu: "
                                  "onnxruntime ")
    assert "has no CUDAExecutionProvider" in proc.stderr and not out.exists()
    help_text = subprocess.run([sys.executable, "-m", "bench.gpu_serve", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and "--artifact" in help_text.stdout
