"""Batch planning: which queued rows run together. Pure functions, unit-tested.

Rows are sorted by length, so a batch's padding is small; the cut points between batches
minimise the backend's cost, modelled as a fixed cost per call (the weights are streamed
from memory once per call) plus the padded tokens (rows x longest row). So a batch of 16
one-sentence requests of mixed length is split where the padding it would carry outweighs
one more call, and kept whole otherwise (the call cost in tokens, and what it gained, are
in BENCHMARKS.md, design).
"""

from __future__ import annotations

from typing import Sequence

EXACT_PLAN_ROWS = 256  # above this many queued rows, greedy filling (already near-optimal)


def bucket(length: int, buckets: tuple[int, ...]) -> int:
    return next((i for i, edge in enumerate(buckets) if length <= edge), len(buckets))


def plan_batches(lengths: Sequence[int], max_tokens: int, max_rows: int,
                 buckets: tuple[int, ...] = (), call_cost_tokens: int = 0) -> list[list[int]]:
    """Indices of `lengths` grouped into batches: sorted by length, every batch within the
    padded-token budget (a single longer row runs alone), the row cap and one bucket."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    widths = [lengths[i] for i in order]
    if call_cost_tokens > 0 and len(order) <= EXACT_PLAN_ROWS:
        cuts = _cheapest_cuts(widths, max_tokens, max_rows, buckets, call_cost_tokens)
    else:
        cuts = _greedy_cuts(widths, max_tokens, max_rows, buckets)
    return [order[a:b] for a, b in zip(cuts, cuts[1:])]


def _fits(widths: Sequence[int], a: int, b: int, max_tokens: int, max_rows: int,
          buckets: tuple[int, ...]) -> bool:
    """Rows a..b-1 (sorted ascending) as one batch."""
    rows = b - a
    return rows == 1 or (rows <= max_rows and rows * widths[b - 1] <= max_tokens
                         and bucket(widths[a], buckets) == bucket(widths[b - 1], buckets))


def _greedy_cuts(widths: Sequence[int], max_tokens: int, max_rows: int,
                 buckets: tuple[int, ...]) -> list[int]:
    cuts = [0]
    for end in range(1, len(widths) + 1):
        if not _fits(widths, cuts[-1], end, max_tokens, max_rows, buckets):
            cuts.append(end - 1)
    return cuts + [len(widths)] if widths else cuts


def _cheapest_cuts(widths: Sequence[int], max_tokens: int, max_rows: int,
                   buckets: tuple[int, ...], call_cost: int) -> list[int]:
    """Dynamic programme over sorted rows: best[j] = cheapest way to run rows 0..j-1."""
    n = len(widths)
    best = [0.0] + [float("inf")] * n
    prev = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end - 1, max(-1, end - 1 - max_rows), -1):
            if not _fits(widths, start, end, max_tokens, max_rows, buckets):
                break  # a longer batch only pads more or breaks the same limit
            cost = best[start] + call_cost + (end - start) * widths[end - 1]
            if cost < best[end]:
                best[end], prev[end] = cost, start
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(prev[cuts[-1]])
    return cuts[::-1]
