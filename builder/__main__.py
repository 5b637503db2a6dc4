"""`python -m builder --model-path M --output DIR`: build a servable artifact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.build import BuildConfig, BuildError, build
from builder import memory
from builder.compile import RTX_DEFAULT_TARGETS, CompileError, CompileOptions
from builder.progress import say
from models.spec import UnsupportedModelError
from runtime.backends.trt_plan import FLAVOURS, RTX_COMPUTE_CAPABILITIES
from runtime import settings
from runtime.artifact.cache import build_backend
from runtime.errors import ApplianceError
from runtime.settings import add_flag


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m builder", description=__doc__)
    parser.add_argument("--model-path", required=True, help="checkpoint dir or hub id")
    parser.add_argument("--output", required=True, type=Path, help="artifact dir to write")
    add_flag(parser, settings.PRECISION, help=f"chosen in the exported graph (norms, softmax "
             f"and pooling stay fp32; default {settings.DEFAULT_PRECISION})")
    add_flag(parser, settings.BACKEND, help="tensorrt: also compile a plan per graph on this "
             "GPU (TensorRT 11); tensorrt-rtx: TensorRT for RTX, on any machine (no GPU "
             "needed); onnxruntime, onnxruntime-cuda: the ONNX graphs only; auto: a TensorRT "
             "11 plan where this machine runs one, else the graphs only")
    trt = parser.add_argument_group("TensorRT (--backend tensorrt | tensorrt-rtx)")
    trt.add_argument("--compute-capability", action="append", default=[], metavar="X.Y",
                     help="tensorrt-rtx target, repeatable (one of "
                          f"{', '.join(RTX_COMPUTE_CAPABILITIES)}); default: the library's "
                          f"portable set ({', '.join(RTX_DEFAULT_TARGETS)})")
    add_flag(trt, settings.MAX_BATCH_SIZE)
    add_flag(trt, settings.MAX_BATCH_TOKENS)
    trt.add_argument("--workspace-mib", type=int, default=0,
                     help="builder memory-pool limit; 0: per graph, its largest profile's "
                          "memory estimate (at least 4096)")
    trt.add_argument("--gpu-memory-gib", type=float, default=None,
                     help="memory of the GPU the plans are for (default: this machine's GPU, "
                          f"else {memory.RTX_DEFAULT_GIB:g} for tensorrt-rtx): refuse, before "
                          "exporting, a build whose weights + 2 contexts x its largest "
                          "profile's activations exceed it, and fit fp32's unfused attention "
                          "to it; 0: neither")
    trt.add_argument("--opt-level", type=int, default=3, choices=range(6),
                     help="builder optimisation level")
    trt.add_argument("--timing-cache", type=Path, default=None,
                     help="timing cache file to reuse across builds (default: in the artifact)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--external-data", action="store_true",
                        help="weights in model.onnx.data even below 2 GB (automatic above)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="accepted for SGLang compatibility; families are built in")
    return parser


def parse_args(argv: list[str] | None = None) -> BuildConfig:
    args = parser().parse_args(argv)
    backend = build_backend(args.backend)  # auto, onnxruntime-cuda: what this machine builds
    compile_options = CompileOptions(args.max_batch_size or settings.DEFAULT_BATCH_SIZE,
                                     args.max_batch_tokens or settings.DEFAULT_BATCH_TOKENS,
                                     args.workspace_mib, args.opt_level, args.timing_cache,
                                     flavour=backend if backend in FLAVOURS else "tensorrt",
                                     compute_capabilities=tuple(args.compute_capability),
                                     gpu_memory_gib=args.gpu_memory_gib)
    return BuildConfig(model=args.model_path, output=args.output.resolve(),
                       precision=args.precision or settings.DEFAULT_PRECISION,
                       force=args.force, backend=backend,
                       compile_options=compile_options,
                       external_data=args.external_data)


def main(argv: list[str] | None = None) -> int:
    try:
        build(parse_args(argv))  # parsing settles the backend: tensorrt without it fails here
    except (BuildError, CompileError, ApplianceError, UnsupportedModelError,
            FileNotFoundError) as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
