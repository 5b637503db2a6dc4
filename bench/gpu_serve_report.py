"""bench.gpu_serve's table: the measured rows, the issue's four targets, the section of
BENCHMARKS_GPU.md. Pure (unit-tested without a GPU)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

SECTION = "gpu-serve"
# (sentences per request, clients): the issue's shapes, each with float and base64 answers.
SERVER_SHAPES = ((64, 8), (1, 64), (256, 4))
RAW_BATCHES = (64, 256)


@dataclass(frozen=True)
class Row:
    """One measured row: engine, baseline or server."""

    name: str
    tokens_per_s: float
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    gpu_busy_pct: float | None = None
    server_cpu_pct: float | None = None


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool


def server_name(size: int, clients: int, encoding: str) -> str:
    return f"server {size} x {clients} ({encoding})"


def judge(rows: Sequence[Row]) -> list[Verdict]:
    """The issue's four targets against the measured rows."""
    by = {r.name: r for r in rows}
    raw64, st64 = by["raw engine, batch 64"], by["sentence-transformers fp16, batch 64"]
    s64, s1 = by[server_name(64, 8, "float")], by[server_name(1, 64, "float")]
    s256 = by[server_name(256, 4, "float")]
    engine = s64.tokens_per_s / raw64.tokens_per_s
    over_st = s64.tokens_per_s / st64.tokens_per_s
    rps, p99 = s1.requests_per_s or 0.0, s1.p99_ms if s1.p99_ms is not None else float("inf")
    busy = s256.gpu_busy_pct
    return [
        Verdict("server 64 x 8 >= 70% of the raw engine's tokens/s (batch 64)",
                f"{engine:.0%}", engine >= 0.70),
        Verdict("server 64 x 8 >= 3x sentence-transformers fp16 (batch 64)",
                f"{over_st:.2f}x", over_st >= 3.0),
        Verdict("server 1 x 64 >= 5000 req/s with p99 <= 50 ms",
                f"{rps:.0f} req/s, p99 {p99:.1f} ms", rps >= 5000 and p99 <= 50),
        Verdict("GPU busy >= 70% under 256-sentence load",
                "n/a (no nvidia-smi)" if busy is None else f"{busy:.0f}%",
                busy is not None and busy >= 70),
    ]


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(rows: Sequence[Row], verdicts: Sequence[Verdict], machine: dict[str, str]) -> str:
    """The BENCHMARKS_GPU.md section: machine and versions, the table, the targets."""
    lines = ["## Serving on ONNX Runtime CUDA (`python -m bench.gpu_serve`)", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    lines += ["", "| run | tokens/s | req/s | p50 ms | p99 ms | GPU busy % | server CPU % |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.tokens_per_s:,.0f} | {_cell(r.requests_per_s, ',.0f')} "
                     f"| {_cell(r.p50_ms, '.1f')} | {_cell(r.p99_ms, '.1f')} "
                     f"| {_cell(r.gpu_busy_pct, '.0f')} | {_cell(r.server_cpu_pct, '.0f')} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {v.target} | {v.measured} | {'yes' if v.met else 'NO'} |" for v in verdicts]
    return "\n".join(lines) + "\n"
