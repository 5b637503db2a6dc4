"""BENCHMARKS.md from the runs: every row as a ratio to sentence-transformers (a)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tests.bench.stats import Run, baseline_for, ratio


@dataclass(frozen=True)
class Context:
    when: str
    command: str
    machine: str
    threads: int
    load_before: float
    load_after: float
    versions: dict[str, str]
    model: str
    corpus: str
    flops_per_token: float  # at the corpus's mean length
    matmul_flops: float  # measured fp32 matmul rate, FLOP/s
    int8_quality: str  # "" when int8 was not run


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def row(run: Run, runs: Sequence[Run]) -> str:
    base = baseline_for(run, runs)
    throughput = find(runs, "a", "fp32", 0)  # the whole-corpus batch-32 encode
    cells = [run.system, run.label, run.precision,
             _num(run.sentences_per_s), _x(ratio(run.sentences_per_s, throughput and throughput.sentences_per_s)),
             _num(run.tokens_per_s),
             _x(ratio(run.tokens_per_s, throughput and throughput.tokens_per_s)),
             _num(run.p50_ms, 1), _x(ratio(run.p50_ms, base.p50_ms)),
             _num(run.p99_ms, 1), _x(ratio(run.p99_ms, base.p99_ms)),
             "–" if run.min_cosine is None else f"{run.min_cosine:.6f}"]
    return "| " + " | ".join(cells) + " |"


def find(runs: Sequence[Run], system: str, precision: str, size: int,
         concurrency: int = 1) -> Run | None:
    return next((r for r in runs if r.system == system and r.precision == precision
                 and r.request_size == size and r.concurrency == concurrency), None)


def targets(runs: Sequence[Run]) -> list[str]:
    """The issue's targets, checked on this run's numbers."""
    a = find(runs, "a", "fp32", 0)
    b = find(runs, "b", "fp32", 0)
    b1 = find(runs, "b", "fp32", 1)
    lines = []

    def check(name: str, value: float | None, goal: float, fmt: str = "{:.2f}×",
              at_most: bool = False) -> None:
        if value is None:
            lines.append(f"- {name}: not measured")
            return
        ok = value <= goal if at_most else value >= goal
        op = "≤" if at_most else "≥"
        lines.append(f"- {name}: {fmt.format(value)} (target {op} {fmt.format(goal)}) "
                     f"{'**met**' if ok else '**missed**'}")

    for size in (1, 32):
        c16 = find(runs, "c", "fp32", size, 16)
        check(f"server fp32, concurrency 16, {size}-sentence requests vs (a) tokens/s",
              ratio(c16 and c16.tokens_per_s, a and a.tokens_per_s), 1.5)
        check(f"server fp32, concurrency 16, {size}-sentence requests vs (b) tokens/s",
              ratio(c16 and c16.tokens_per_s, b and b.tokens_per_s), 0.9)
    c1 = find(runs, "c", "fp32", 1, 1)
    if c1 and b1 and c1.p50_ms is not None and b1.p50_ms is not None:
        check("single one-sentence request p50 minus (b)'s batch-of-one p50",
              c1.p50_ms - b1.p50_ms, 2.0, "{:.2f} ms", at_most=True)
    int8 = find(runs, "c", "int8", 1, 16)
    if int8:
        check("server int8, concurrency 16, 1-sentence requests vs (a) tokens/s",
              ratio(int8.tokens_per_s, a and a.tokens_per_s), 2.0)
    return lines


def busy_warning(ctx: Context) -> list[str]:
    """Rows measured minutes apart are only comparable on an otherwise idle machine."""
    if max(ctx.load_before, ctx.load_after) < 1.0:
        return []
    return [f"**Warning: the machine was busy (load average up to "
            f"{max(ctx.load_before, ctx.load_after):.1f} on {ctx.threads} threads).** Other "
            "processes took CPU unevenly during the run, so rows measured at different times "
            "are not comparable and the targets below say little about the code. Rerun "
            "`make bench` on an idle machine.", ""]


HEADER = ("| | run | precision | sentences/s | × (a) | tokens/s | × (a) | p50 ms | × (a) "
          "| p99 ms | × (a) | min cosine vs (a) |\n|---|---|---|---:|---:|---:|---:|---:|---:"
          "|---:|---:|---:|")


def render(ctx: Context, runs: Sequence[Run]) -> str:
    b = find(runs, "b", "fp32", 0)
    achieved = b.tokens_per_s * ctx.flops_per_token if b else None
    versions = ", ".join(f"{k} {v}" for k, v in ctx.versions.items())
    parts = [
        "# Benchmarks", "",
        f"Written by `{ctx.command}` on {ctx.when}. Numbers are from that one run; "
        "regenerate them with `make bench` (`make bench ARGS=--quick` for a short run).", "",
        "## Setup", "",
        f"- Machine: {ctx.machine}; {ctx.threads} cores for every system (the run is "
        f"pinned to them; torch set to {ctx.threads} threads, our Embedder and server in "
        "their default threading: one-thread batches, two per core). Load average (1 min) {ctx.load_before:.2f} before, "
        f"{ctx.load_after:.2f} after: other processes share these cores, so absolute numbers "
        "vary between runs; ratios within one run are the comparison.",
        f"- Versions: {versions}.",
        f"- Model: {ctx.model}.", f"- Corpus: {ctx.corpus}.",
        "- (a) sentence-transformers `encode` (batch 32, what a user runs instead), "
        "(b) our Embedder without HTTP (tokenizer, length-sorted token-budget batches, "
        "ONNX Runtime), (c) the real `python -m server.launch_server` process under "
        "closed-loop load from a minimal keep-alive HTTP client on the same machine.",
        "- Throughput ratios are to (a)'s whole-corpus encode; latency ratios to (a) called "
        "with the same number of sentences. Tokens are real tokens (special tokens in, "
        "padding out). Min cosine: our vectors vs (a)'s on the same sentences.", "",
        *busy_warning(ctx),
        "## Results", "", HEADER, *(row(r, runs) for r in runs), "",
        "## Targets", "", *targets(runs), "",
        "## How close to this CPU's limit", "",
        f"- The model costs {ctx.flops_per_token / 1e6:.1f} MFLOP per token at the corpus's "
        "mean length (matmuls: projections, MLP, attention; `tests/bench/roofline.py`).",
        f"- ONNX Runtime's fp32 MatMul on this CPU ({ctx.threads} threads, the model's "
        f"hidden x intermediate shape): {ctx.matmul_flops / 1e9:.1f} GFLOP/s.",
    ]
    if achieved is not None:
        parts.append(f"- (b) fp32 runs at {achieved / 1e9:.1f} GFLOP/s, "
                     f"{achieved / ctx.matmul_flops:.0%} of that rate.")
    if ctx.int8_quality:
        parts += ["", "## int8 (opt-in, `--precision int8`)", "", ctx.int8_quality]
    return "\n".join(parts) + "\n"
