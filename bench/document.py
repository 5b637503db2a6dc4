"""BENCHMARKS.md is written by several benchmarks: each owns one section between markers
and rewrites only that, so `make bench` keeps the TensorRT build times and the design
measurements, and the build-time script keeps the CPU serving results."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Sequence

TITLE = "# Benchmarks\n"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def replace_section(path: Path, name: str, body: str) -> str:
    """Write `body` as section `name` of the document at `path` (appended if new); returns
    the whole document. Text outside the section's markers is kept as it is."""
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text() if path.is_file() else TITLE
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return text


def section_main(argv: Sequence[str] | None, prog: str, description: str | None, section: str,
                 run: Callable[[Path, bool], str], quick_help: str) -> int:
    """The command line of a benchmark that owns one section: `--quick`, `--output`,
    `--cache`; runs it, rewrites its section and prints it."""
    import argparse

    from devtools.helpers import ROOT

    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench")
    args = p.parse_args(argv)
    text = run(args.cache, args.quick)
    replace_section(args.output, section, text)
    print(text)
    return 0
