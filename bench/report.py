"""BENCHMARKS.md from the runs: every row as a ratio to sentence-transformers (a)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bench.stats import Run, baseline_for, ratio


@dataclass(frozen=True)
class Context:
    when: str
    command: str
    machine: str
    threads: int
    # Share of the machine's CPU time that other processes (or the hypervisor) took while
    # the benchmark ran: rows measured minutes apart are comparable only when it is small.
    other_cpu_share: float
    versions: dict[str, str]
    model: str
    corpus: str
    flops_per_token: float  # at the corpus's mean length
    matmul_weight_bytes: int  # fp32 bytes of the layers' matmul weights, read once per call
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
             _num(run.sentences_per_s), _x(ratio(run.sentences_per_s, throughput.sentences_per_s if throughput else None)),
             _num(run.tokens_per_s),
             _x(ratio(run.tokens_per_s, throughput.tokens_per_s if throughput else None)),
             _num(run.p50_ms, 1), _x(ratio(run.p50_ms, base.p50_ms)),
             _num(run.p99_ms, 1), _x(ratio(run.p99_ms, base.p99_ms)),
             "–" if run.min_cosine is None else f"{run.min_cosine:.6f}"]
    return "| " + " | ".join(cells) + " |"


def find(runs: Sequence[Run], system: str, precision: str, size: int,
         concurrency: int = 1, round_: int = 0) -> Run | None:
    return next((r for r in runs if r.system == system and r.precision == precision
                 and r.request_size == size and r.concurrency == concurrency
                 and r.round == round_), None)


def round_ratios(runs: Sequence[Run], top: tuple[str, str, int, int],
                 bottom: tuple[str, str, int, int]) -> list[float]:
    """tokens/s of `top` over `bottom` ((system, precision, size, concurrency)) within each
    interleaved round; the main pass alone when there were no rounds."""
    rounds = sorted({r.round for r in runs if r.round}) or [0]
    out = []
    for n in rounds:
        a, b = find(runs, *top, round_=n), find(runs, *bottom, round_=n)
        if a and b:
            out.append(a.tokens_per_s / b.tokens_per_s)
    return out


def p50_deltas(runs: Sequence[Run], top: tuple[str, str, int, int],
               bottom: tuple[str, str, int, int]) -> list[float]:
    """p50 ms of `top` minus `bottom` within each interleaved round that timed both; the
    main pass alone when none did."""
    rounds = sorted({r.round for r in runs if r.round}) + [0]
    for chosen in ([n for n in rounds if n], [0]):
        out = []
        for n in chosen:
            a, b = find(runs, *top, round_=n), find(runs, *bottom, round_=n)
            if a and b and a.p50_ms is not None and b.p50_ms is not None:
                out.append(a.p50_ms - b.p50_ms)
        if out:
            return out
    return []


def targets(runs: Sequence[Run]) -> list[str]:
    """The issue's targets: throughput ratios as the median over interleaved rounds."""
    lines = []

    def check(name: str, values: list[float], goal: float, fmt: str = "{:.2f}×",
              at_most: bool = False) -> None:
        if not values:
            lines.append(f"- {name}: not measured")
            return
        value = float(np.median(values))
        ok = value <= goal if at_most else value >= goal
        op = "≤" if at_most else "≥"
        spread = (f" (median of {len(values)} rounds: "
                  + ", ".join(fmt.format(v) for v in values) + ")") if len(values) > 1 else ""
        lines.append(f"- {name}: {fmt.format(value)}{spread} (target {op} {fmt.format(goal)}) "
                     f"{'**met**' if ok else '**missed**'}")

    a, b = ("a", "fp32", 0, 1), ("b", "fp32", 0, 1)
    for size in (1, 32):
        c16 = ("c", "fp32", size, 16)
        check(f"server fp32, concurrency 16, {size}-sentence requests vs (a) tokens/s",
              round_ratios(runs, c16, a), 1.5)
        check(f"server fp32, concurrency 16, {size}-sentence requests vs (b) tokens/s",
              round_ratios(runs, c16, b), 0.9)
    check("single one-sentence request p50 minus (b)'s batch-of-one p50",
          p50_deltas(runs, ("c", "fp32", 1, 1), ("b", "fp32", 1, 1)), 2.0, "{:.2f} ms",
          at_most=True)
    check("server int8, concurrency 16, 1-sentence requests vs (a) tokens/s",
          round_ratios(runs, ("c", "int8", 1, 16), a), 2.0)
    return lines


def one_sentence_gap(runs: Sequence[Run], weight_bytes: int) -> list[str]:
    """Splits the one-sentence server's distance to (b) in two, per round: what HTTP costs
    (the same 16 one-sentence callers without it) and what small batches cost."""
    callers = ("b", "fp32", 1, 16)
    http = round_ratios(runs, ("c", "fp32", 1, 16), callers)
    small = round_ratios(runs, callers, ("b", "fp32", 0, 1))
    if not http or not small:
        return []

    def spread(values: list[float]) -> str:
        return f"{float(np.median(values)):.2f}× (" + ", ".join(f"{v:.2f}×" for v in values) + ")"

    return ["Where the one-sentence server's distance to (b) goes (tokens/s, median of the "
            "rounds; not targets):", "",
            f"- HTTP: the server at concurrency 16 vs (b) fed by 16 concurrent one-sentence "
            f"callers without HTTP: {spread(http)}.",
            f"- Batch size: those 16 callers vs (b) on the whole corpus: {spread(small)}. Sixteen "
            "one-sentence callers keep only a few rows per batch (more rows would mean more "
            "padding), and every backend call reads all the fp32 matmul weights "
            f"({weight_bytes / 1e6:.0f} MB) from memory, however few its rows.", ""]


def rounds_table(runs: Sequence[Run]) -> list[str]:
    """Every interleaved measurement, one column per round: tokens/s, or the p50 of the
    one-at-a-time latency runs."""
    rounds = sorted({r.round for r in runs if r.round})
    if not rounds:
        return []
    labels = list(dict.fromkeys((r.system, r.label, r.precision) for r in runs if r.round))
    lines = ["| | run | precision | " + " | ".join(f"round {n}" for n in rounds) + " |",
             "|---|---|---|" + "---:|" * len(rounds)]
    for system, label, precision in labels:
        cells = [next((_cell(r) for r in runs if r.round == n and r.system == system
                       and r.label == label and r.precision == precision), "–") for n in rounds]
        lines.append(f"| {system} | {label} | {precision} | " + " | ".join(cells) + " |")
    return lines


def _cell(run: Run) -> str:
    if run.concurrency == 1 and run.p50_ms is not None:
        return f"p50 {run.p50_ms:.1f} ms"
    return f"{_num(run.tokens_per_s)} tokens/s"


BUSY_SHARE = 0.05


def busy_warning(ctx: Context) -> list[str]:
    """Rows measured minutes apart are only comparable on an otherwise idle machine."""
    if ctx.other_cpu_share < BUSY_SHARE:
        return []
    return [f"**Warning: other processes took {ctx.other_cpu_share:.0%} of this machine's "
            "CPU time during the run.** They took it unevenly, so rows measured at different "
            "times are not comparable and the targets below say little about the code. Rerun "
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
        "their default threading: one-thread batches, two per core). Other processes took "
        f"{ctx.other_cpu_share:.1%} of the machine's CPU time during the run; absolute "
        "numbers vary between runs, ratios within one run are the comparison.",
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
        "## Results", "", HEADER, *(row(r, runs) for r in runs if not r.round), "",
        "## Targets", "",
        "Throughput ratios are taken within each of the interleaved rounds below ((a), (b) "
        "and the servers measured back to back, so that the CPU's drift over minutes on this "
        "shared machine cancels out), then their median.", "", *targets(runs), "",
        *one_sentence_gap(runs, ctx.matmul_weight_bytes),
        "### Interleaved rounds", "", *rounds_table(runs), "",
        "## How close to this CPU's limit", "",
        f"- The model costs {ctx.flops_per_token / 1e6:.1f} MFLOP per token at the corpus's "
        "mean length (matmuls: projections, MLP, attention; `bench/roofline.py`).",
        f"- ONNX Runtime's fp32 MatMul on this CPU ({ctx.threads} threads, the model's "
        f"hidden x intermediate shape): {ctx.matmul_flops / 1e9:.1f} GFLOP/s.",
    ]
    if achieved is not None:
        parts.append(f"- (b) fp32 runs at {achieved / 1e9:.1f} GFLOP/s, "
                     f"{achieved / ctx.matmul_flops:.0%} of that rate.")
    if ctx.int8_quality:
        parts += ["", "## int8 (opt-in, `--precision int8`)", "", ctx.int8_quality]
    return "\n".join(parts) + "\n"
