"""`python -m bench.trt_build`: TensorRT for RTX ahead-of-time build times, per family and
precision, on this machine (no GPU needed): the default model and every family's tiny
checkpoint, as tests/integration/builder/test_trt_rtx_build.py builds them. Writes its section of
BENCHMARKS.md (bench/document.py; `make bench` keeps it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

from bench.document import replace_section
from bench.machine import cpu_model
from runtime.artifact.manifest import Manifest
from devtools.helpers import ROOT, build_artifact, minilm_checkpoint

VERSIONED = ("tensorrt-rtx-cu13-bindings", "torch", "onnx", "transformers")


def checkpoints(root: Path) -> Iterator[tuple[str, Path]]:
    from devtools.checkpoints.tiny_decoders import KINDS, tiny_decoder
    from devtools.checkpoints.tiny_multimodal import make_tiny_clip, make_tiny_qwen2_vl

    yield "bert (all-MiniLM-L6-v2)", minilm_checkpoint()
    for name in KINDS:
        yield f"{name} (tiny)", tiny_decoder(name, root / name)
    yield "clip (tiny)", make_tiny_clip(root / "clip")
    yield "gme (tiny)", make_tiny_qwen2_vl(root / "gme")


def rows(root: Path) -> list[str]:
    out = []
    for name, checkpoint in checkpoints(root):
        for precision in ("fp32", "fp16"):
            start = time.perf_counter()
            artifact = build_artifact(checkpoint, root / "out" / f"{name}-{precision}",
                                      precision=precision, backend="tensorrt-rtx")
            wall = time.perf_counter() - start
            record = Manifest.load(artifact).tensorrt
            assert record is not None
            plans = ", ".join(
                f"{tower} {plan.build_seconds:.1f} s / "
                f"{(artifact / plan.file).stat().st_size / 2**20:.1f} MiB"
                for tower, plan in record.plans.items())
            out.append(f"| {name} | {precision} | {plans} | {wall:.1f} s |")
    return out


def section(table: list[str]) -> str:
    versions = ", ".join(f"{n} {importlib.metadata.version(n)}" for n in VERSIONED)
    return "\n".join([
        "## TensorRT for RTX ahead-of-time builds (no GPU)", "",
        f"Written by `python -m bench.trt_build` on {cpu_model()} ({os.cpu_count()} cores), "
        f"no GPU; {versions}. Default targets (compute capability 8.0 and later), "
        "max batch 64, 16384 batch tokens, optimisation level 3. TensorRT time is the parse "
        "and build of each graph; the whole build also exports, verifies (the parity gate) "
        "and writes the artifact.", "",
        "| model | precision | TensorRT per graph (time / plan size) | whole build |",
        "|---|---|---|---:|", *table])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trt_build", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text = section(rows(Path(tmp)))
    replace_section(args.output, "trt-build", text)
    print(text)


if __name__ == "__main__":
    main()
