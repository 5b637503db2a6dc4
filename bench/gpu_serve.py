"""GPU serving benchmark: the appliance on ONNX Runtime CUDA against its own engine and
sentence-transformers fp16, on the corpus of `make bench` (bench/corpus.py).

    python -m bench.gpu_serve [--model-path CKPT] [--artifact DIR] [--output BENCHMARKS_GPU.md]

Without --artifact it builds an fp16 artifact (python -m builder) of --model-path, by
default a bge-base-shaped BERT (768 wide, 12 layers, random weights, CLS pooling) made
here with the all-MiniLM tokenizer. Rows: the raw engine (one IO-bound session, batches of
64 and 256 rows sorted by length), sentence-transformers fp16 encode at batch 64/256, and
the server (`--backend onnxruntime-cuda`) under closed-loop HTTP load, float and base64;
GPU busy % (nvidia-smi) and the server process's CPU %. Needs a CUDA GPU, onnxruntime-gpu
and torch with CUDA (make install-gpu, pip install -e '.[build,bench]'). The measuring is
in bench/gpu_serve_run.py, the targets and the table in bench/gpu_serve_report.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from bench.gpu_serve_report import SECTION, judge, render


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-path", type=Path, default=None,
                   help="checkpoint to build in fp16 (default: a bge-base-shaped BERT with "
                        "random weights, made here)")
    p.add_argument("--artifact", type=Path, default=None,
                   help="an artifact already built (fp16); skips the build")
    p.add_argument("--output", type=Path, default=Path("BENCHMARKS_GPU.md"))
    p.add_argument("--work-dir", type=Path, default=Path(".cache/gpu-serve"),
                   help="where the checkpoint and artifact are made")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="each measurement repeats the corpus until it lasts this long")
    p.add_argument("--device-id", type=int, default=0)
    p.add_argument("--server-args", default="",
                   help="extra server flags, e.g. '--batches-in-flight 3'")
    args = p.parse_args(argv)
    if args.seconds <= 0:
        p.error("--seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.gpu_serve_run import gpu_missing, run

    missing = gpu_missing()
    if missing:
        print(f"bench.gpu_serve needs a CUDA GPU and onnxruntime-gpu: {missing}", file=sys.stderr)
        return 1
    rows, machine = run(args)
    verdicts = judge(rows)
    from bench.document import replace_section

    replace_section(args.output, SECTION, render(rows, verdicts, machine))
    print(render(rows, verdicts, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
