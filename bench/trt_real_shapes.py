"""`python -m bench.trt_real_shapes`: TensorRT-for-RTX builds of every family at its real hub
configuration's widths, heads, vocabulary and maximum context, with the layers cut to one and
random weights (devtools/checkpoints/real_shapes.py), each as a user runs it (`python -m builder
--backend tensorrt-rtx`, default flags) in a child process: wall time, the child's peak
memory (os.wait4), each profile's memory (the builder's estimate, from the manifest) and
TensorRT's own activation figure. Results accumulate in a JSON file (one build at a time,
resumable); the section `trt-build-real` of BENCHMARKS.md is written from it.

    python -m bench.trt_real_shapes --models gme_2b --precisions fp32
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.document import replace_section
from devtools.checkpoints.real_shapes import MAKERS
from devtools.helpers import ROOT

GIB = 1 << 30
RESULTS = ROOT / ".cache" / "real-shapes" / "results.json"


def build_one(checkpoint: Path, output: Path, precision: str) -> dict[str, Any]:
    """One `python -m builder` run: wall seconds, peak RSS, exit status. The peak comes from
    GNU time around the builder: a child forked from this process would report this
    process's own high-water mark (Linux keeps ru_maxrss across exec) when it is higher."""
    peak = output.with_suffix(".maxrss")
    cmd = ["/usr/bin/time", "-f", "%M", "-o", str(peak), sys.executable, "-m", "builder",
           "--model-path", str(checkpoint), "--output", str(output), "--backend",
           "tensorrt-rtx", "--precision", precision, "--force"]
    log = output.with_suffix(".log")
    start = time.perf_counter()
    with log.open("w") as sink:
        code = subprocess.run(cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    kib = int(peak.read_text().split()[-1])
    tail = [line for line in log.read_text().splitlines() if "error" in line.lower()][-1:]
    return {"seconds": round(wall, 1), "peak_rss_gib": round(kib * 1024 / GIB, 2),
            "exit": code, "error": tail[0][:300] if code and tail else ""}


def plans(output: Path) -> dict[str, Any]:
    """Per graph: build seconds, plan MiB, each profile's estimate and TensorRT's figures,
    with what they say of attention (recomputed by builder.compile's rule from the recorded
    figure, so older artifacts read the same way)."""
    from builder.compile import _attention
    from builder.memory import read_config
    from runtime.artifact.manifest import Manifest

    manifest = Manifest.load(output)
    assert manifest.tensorrt is not None
    config = read_config(Path(manifest.source["path"]))
    out = {}
    for tower, plan in manifest.tensorrt.plans.items():
        out[tower] = {
            "seconds": plan.build_seconds,
            "plan_mib": round((output / plan.file).stat().st_size / 2**20, 1),
            "profiles": {p.name: [list(p.first.max), plan.memory_bytes.get(p.name, 0)]
                         for p in plan.profiles},
            "tensorrt": dict(plan.tensorrt_memory),
            "attention": _attention(tower, manifest.graphs[tower], plan.profiles,
                                    manifest.spec, config, plan.tensorrt_memory)}
    return out


def run(models: list[str], precisions: list[str], root: Path) -> dict[str, Any]:
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in models:
        checkpoint = MAKERS[name](root / name)
        for precision in precisions:
            output = root / "out" / f"{name}-{precision}"
            output.parent.mkdir(parents=True, exist_ok=True)
            row = build_one(checkpoint, output, precision)
            if row["exit"] == 0:
                row["plans"] = plans(output)
            results[f"{name} {precision}"] = row
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1))
            print(name, precision, {k: v for k, v in row.items() if k != "plans"}, flush=True)
    return results


def refresh(results: dict[str, Any], root: Path) -> dict[str, Any]:
    """Each successful row's plans re-read from its artifact's manifest."""
    for key, row in results.items():
        output = root / "out" / key.replace(" ", "-")
        if row["exit"] == 0 and (output / "manifest.json").is_file():
            row["plans"] = plans(output)
    return results


def _profiles(graph: dict[str, Any]) -> str:
    cells = []
    for name, (shape, estimate) in graph["profiles"].items():
        cells.append(f"{name} {'x'.join(map(str, shape))}: {estimate / GIB:.1f}")
    return "; ".join(cells)


def rows(results: dict[str, Any]) -> list[str]:
    out = []
    for key, row in results.items():
        name, precision = key.rsplit(" ", 1)
        if row["exit"]:
            out.append(f"| {name} | {precision} | failed: {row['error']} | | "
                       f"{row['seconds']} s | {row['peak_rss_gib']} GiB |")
            continue
        for tower, graph in row["plans"].items():
            trt = graph["tensorrt"].get("activation_bytes", 0) / GIB
            out.append(f"| {name} | {precision} | {tower}: {_profiles(graph)} | "
                       f"{trt:.2f} GiB, {graph.get('attention', 'unknown')} | "
                       f"{graph['seconds']} s / {row['seconds']} s | "
                       f"{row['peak_rss_gib']} GiB |")
    return out


def section(results: dict[str, Any]) -> str:
    return "\n".join([
        "### Real shapes, one layer (TensorRT for RTX, no GPU)", "",
        "Written by `python -m bench.trt_real_shapes` (`make trt-real-shapes`): each family at "
        "its hub configuration's widths, heads, vocabulary and maximum context, layers cut to "
        "one, random weights, built by `python -m builder --backend tensorrt-rtx` with default "
        "flags (16384 batch tokens, max batch 64, fitted to TensorRT for RTX's default 32 GiB "
        "GPU budget: builder/fit.py sizes fp32's unfused-attention buckets to it and cuts the "
        "context where one row does not fit, so a profile's last token count is the plan's "
        "longest input). Profiles: name, max input box (rows x tokens,"
        " or images/patches), and the builder's activation estimate in GiB per execution "
        "context at that box (builder/memory.py: fp16 attention fused, fp32 not, an upper "
        "bound). TensorRT's figure: its builder's Total Activation Memory (TensorRT for RTX "
        "sizes each profile at its opt shape), and what it says of attention against one "
        "float32 seq^2 score tensor at the largest opt shape: fused (smaller), materialised "
        "(2x or more, the tensor at least 1/16 of it), else undetermined. Peak: the builder process's maximum resident memory (export, parity gate, "
        "TensorRT), on this 24 GiB machine.", "",
        "| model | precision | graph: profile box: GiB | TensorRT's figure | TensorRT / "
        "whole build | builder peak |", "|---|---|---|---:|---:|---:|", *rows(results)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trt_real_shapes", description=__doc__)
    parser.add_argument("--models", nargs="*", default=list(MAKERS), choices=list(MAKERS))
    parser.add_argument("--precisions", nargs="*", default=["fp16", "fp32"])
    parser.add_argument("--root", type=Path, default=RESULTS.parent)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--write-only", action="store_true", help="rewrite the section only")
    args = parser.parse_args()
    results = (refresh(json.loads(RESULTS.read_text()), args.root) if args.write_only
               else run(args.models, args.precisions, args.root))
    replace_section(args.output, "trt-build-real", section(results))
    print(section(results))


if __name__ == "__main__":
    main()
