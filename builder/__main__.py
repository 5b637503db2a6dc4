"""`python -m builder --model-path M --output DIR`: build a servable artifact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.build import BACKENDS, PRECISIONS, BuildConfig, BuildError, build
from builder.compile import RTX_DEFAULT_TARGETS, CompileError, CompileOptions
from builder.progress import say
from models.spec import UnsupportedModelError
from runtime.backends.trt_plan import FLAVOURS, RTX_COMPUTE_CAPABILITIES
from runtime.errors import ApplianceError


def parse_args(argv: list[str] | None = None) -> BuildConfig:
    parser = argparse.ArgumentParser(prog="python -m builder", description=__doc__)
    parser.add_argument("--model-path", required=True, help="checkpoint dir or hub id")
    parser.add_argument("--output", required=True, type=Path, help="artifact dir to write")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                        help="chosen in the exported graph (norms/softmax/pooling stay fp32)")
    parser.add_argument("--backend", default="onnxruntime", choices=BACKENDS,
                        help="tensorrt: also compile a plan per graph on this GPU (TensorRT 11); "
                             "tensorrt-rtx: TensorRT for RTX, on any machine (no GPU needed)")
    trt = parser.add_argument_group("TensorRT (--backend tensorrt | tensorrt-rtx)")
    trt.add_argument("--compute-capability", action="append", default=[], metavar="X.Y",
                     help="tensorrt-rtx target, repeatable (one of "
                          f"{', '.join(RTX_COMPUTE_CAPABILITIES)}); default: the library's "
                          f"portable set ({', '.join(RTX_DEFAULT_TARGETS)})")
    trt.add_argument("--max-batch-size", type=int, default=64, help="as the server's flag")
    trt.add_argument("--max-batch-tokens", type=int, default=16384, help="as the server's flag")
    trt.add_argument("--workspace-mib", type=int, default=0,
                     help="builder memory-pool limit; 0: per graph, its largest profile's "
                          "memory estimate (at least 4096)")
    trt.add_argument("--gpu-memory-gib", type=float, default=0.0,
                     help="memory of the GPU the plans are for: refuse, before exporting, a "
                          "build whose weights + 2 contexts x its largest profile's "
                          "activations (estimated, attention unfused) exceed it; 0: no check")
    trt.add_argument("--opt-level", type=int, default=3, choices=range(6),
                     help="builder optimisation level")
    trt.add_argument("--timing-cache", type=Path, default=None,
                     help="timing cache file to reuse across builds (default: in the artifact)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--external-data", action="store_true",
                        help="weights in model.onnx.data even below 2 GB (automatic above)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="accepted for SGLang compatibility; families are built in")
    args = parser.parse_args(argv)
    compile_options = CompileOptions(args.max_batch_size, args.max_batch_tokens,
                                     args.workspace_mib, args.opt_level, args.timing_cache,
                                     flavour=args.backend if args.backend in FLAVOURS
                                     else "tensorrt",
                                     compute_capabilities=tuple(args.compute_capability),
                                     gpu_memory_gib=args.gpu_memory_gib)
    return BuildConfig(model=args.model_path, output=args.output.resolve(),
                       precision=args.precision, force=args.force, backend=args.backend,
                       compile_options=compile_options,
                       external_data=args.external_data)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        build(cfg)
    except (BuildError, CompileError, ApplianceError, UnsupportedModelError,
            FileNotFoundError) as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
