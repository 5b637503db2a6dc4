"""Batch planning: which queued rows run together. Pure functions, unit-tested.

Rows are sorted by length, so a batch's padding is small; the backend's cost is modelled
as a fixed cost per call (kernel launches, the weights streamed from memory once per call)
plus the padded tokens (rows x longest row), both in tokens: `call_cost_tokens` is the fixed
cost over the cost of one token. So a batch of 16 one-sentence requests of mixed length is
split where the padding it would carry outweighs one more call, and kept whole otherwise.
A CPU call costs ~8 tokens (BENCHMARKS.md, design); a GPU's is measured at startup
(fit_call_cost) and is thousands: there, batches fill up.

Two planners:
- plan_batches: a whole set at once, exactly (a dynamic programme, pure Python): the bulk
  command's chunks, planned once, off the serving path.
- next_batch: the serving queue's next batch, vectorised: its cost is a sort and a few
  numpy passes over a bounded window of the queue, whatever the batch size, so planning
  stays microseconds per row at GPU speed (the dynamic programme per batch, on the event
  loop, had capped a GPU server at a few percent of its engine).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

EXACT_PLAN_ROWS = 256  # above this many queued rows, greedy filling (already near-optimal)
GRID_SIDE = 64  # next_batch scores at most GRID_SIDE^2 candidate runs


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

def next_batch(lengths: np.ndarray, max_tokens: int, max_rows: int,
               buckets: tuple[int, ...] = (), call_cost_tokens: int = 0) -> np.ndarray:
    """The batch to run next from a window of the queue: indices into `lengths` (arrival
    order), always holding row 0, the oldest (nobody starves).

    One stable sort, then every contiguous run of sorted rows around row 0 that fits the
    limits and row 0's bucket is scored at once (a grid of at most GRID_SIDE^2 cells): the
    run whose overhead per row (its call's fixed cost plus its padding, over its rows) is
    least goes, ties to the larger. That is the cheapest-cuts programme's choice made
    greedily: one row alone pays a whole call, rows of a very different length pay their
    padding. On random queues drained this way the total cost is within ~2% of the
    programme's (tests/unit/runtime/test_batch_plan.py). Without a call cost the batch is
    the largest that fits (greedy filling)."""
    if len(lengths) == 1:
        return np.zeros(1, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    widths = lengths[order].astype(np.int64)
    p = int(np.searchsorted(widths, widths.dtype.type(lengths[0]), side="left"))
    lo, hi = _bucket_span(widths, int(lengths[0]), buckets)
    a = _candidates(max(lo, p - max_rows + 1), p + 1)[:, None]  # first sorted row of a run
    b = _candidates(p + 1, min(hi, p + max_rows) + 1)[None, :]  # one past its last
    rows = b - a
    padded = rows * widths[b - 1]
    fits = (rows == 1) | ((rows <= max_rows) & (padded <= max_tokens))
    if call_cost_tokens > 0:
        sums = np.concatenate(([0], np.cumsum(widths)))
        overhead = (call_cost_tokens + padded - (sums[b] - sums[a])) / rows
        score = -overhead + 1e-9 * rows
    else:
        score = rows - 1e-9 * padded  # most rows, then least padding
    i, j = np.unravel_index(int(np.argmax(np.where(fits, score, -np.inf))), score.shape)
    start, stop = int(a[i, 0]), int(b[0, j])
    if call_cost_tokens > 0 and (start, stop) != (lo, hi):
        # The whole bucket fits one call that pads less than the call the rows left
        # behind would cost: take it (the greedy choice would strand them).
        everything = (hi - lo) * int(widths[hi - 1])
        chosen = (stop - start) * int(widths[stop - 1]) - int(widths[start:stop].sum())
        if (hi - lo <= max_rows and everything <= max_tokens
                and everything - int(widths[lo:hi].sum()) <= chosen + call_cost_tokens):
            start, stop = lo, hi
    return order[start:stop]


def _candidates(start: int, stop: int) -> np.ndarray:
    """start..stop-1, thinned to GRID_SIDE evenly spaced values (both ends kept) when the
    range is longer: the grid stays GRID_SIDE^2 cells for any batch size, and a run of
    several hundred rows is chosen to within a few rows."""
    if stop - start <= GRID_SIDE:
        return np.arange(start, stop)
    return np.unique(np.linspace(start, stop - 1, GRID_SIDE).round().astype(np.int64))


def _bucket_span(widths: np.ndarray, length: int, buckets: tuple[int, ...]) -> tuple[int, int]:
    """The sorted rows [lo, hi) that share `length`'s bucket (bucket())."""
    if not buckets:
        return 0, len(widths)
    k = bucket(length, buckets)
    lo = int(np.searchsorted(widths, buckets[k - 1], side="right")) if k > 0 else 0
    hi = (int(np.searchsorted(widths, buckets[k], side="right")) if k < len(buckets)
          else len(widths))
    return lo, hi


def fit_call_cost(samples: Sequence[tuple[int, float]], max_tokens: int) -> int:
    """A backend's fixed cost per call in tokens, from (padded tokens, seconds) timings of
    at least two batch sizes: the least-squares line's intercept over its slope, within
    [1, max_tokens]. A slope the noise made flat or negative means calls dominate: fill
    batches (max_tokens)."""
    tokens = np.array([t for t, _ in samples], dtype=np.float64)
    seconds = np.array([s for _, s in samples], dtype=np.float64)
    if len(set(tokens.tolist())) < 2:
        raise ValueError("fit_call_cost needs timings of at least two batch sizes")
    slope, intercept = np.polyfit(tokens, seconds, 1)
    if slope <= 0:
        return max_tokens
    return int(min(max_tokens, max(1.0, round(intercept / slope))))
