"""`python -m builder --model-path M --output DIR`: build a servable artifact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.build import PRECISIONS, BuildConfig, BuildError, build
from builder.progress import say
from models.spec import UnsupportedModelError


def parse_args(argv: list[str] | None = None) -> BuildConfig:
    parser = argparse.ArgumentParser(prog="python -m builder", description=__doc__)
    parser.add_argument("--model-path", required=True, help="checkpoint dir or hub id")
    parser.add_argument("--output", required=True, type=Path, help="artifact dir to write")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--external-data", action="store_true",
                        help="weights in model.onnx.data even below 2 GB (automatic above)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="accepted for SGLang compatibility; families are built in")
    args = parser.parse_args(argv)
    return BuildConfig(model=args.model_path, output=args.output.resolve(),
                       precision=args.precision, force=args.force,
                       external_data=args.external_data)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        build(cfg)
    except (BuildError, UnsupportedModelError, FileNotFoundError) as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
