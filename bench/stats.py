"""What one benchmark run measured, and its ratios to the sentence-transformers baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


def percentile_ms(latencies_s: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(latencies_s, dtype=np.float64), q) * 1000)


@dataclass(frozen=True)
class Run:
    """One row of BENCHMARKS.md."""

    system: str  # "a" sentence-transformers, "b" backend alone, "c" HTTP server
    label: str
    precision: str
    request_size: int  # sentences per call/request (0: the whole corpus in one call)
    concurrency: int
    sentences: int
    tokens: int  # real tokens (no padding), special tokens included
    seconds: float
    latencies_s: tuple[float, ...] = field(default=(), repr=False)
    min_cosine: float | None = None  # vs sentence-transformers, when the vectors were kept
    round: int = 0  # 0: the main pass; n: the n-th interleaved round (bench/rounds.py)

    @property
    def sentences_per_s(self) -> float:
        return self.sentences / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def p50_ms(self) -> float | None:
        return percentile_ms(self.latencies_s, 50) if self.latencies_s else None

    @property
    def p99_ms(self) -> float | None:
        return percentile_ms(self.latencies_s, 99) if self.latencies_s else None


def baseline_for(run: Run, baselines: Sequence[Run]) -> Run:
    """The (a) run a row is compared with: same request size (throughput runs: size 0)."""
    main = [b for b in baselines if b.system == "a" and b.round == 0]
    same = [b for b in main if b.request_size == run.request_size]
    if same:
        return same[0]
    return next(b for b in main if b.request_size == 0)


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def min_cosine(ours: np.ndarray, reference: np.ndarray) -> float:
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    return float(np.sum(ours * reference, axis=1).min())
