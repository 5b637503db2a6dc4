"""Batch planning: which queued rows run together. Pure functions, unit-tested.

Rows are sorted by length, so a batch's padding is small; the backend's cost is modelled
as a fixed cost per call (kernel launches, the weights streamed from memory once per call)
plus the padded tokens (rows x longest row), both in tokens: `call_cost_tokens` is the fixed
cost over the cost of one token. So a batch of 16 one-sentence requests of mixed length is
split where the padding it would carry outweighs one more call, and kept whole otherwise.
A CPU call costs ~8 tokens (BENCHMARKS.md, design); a GPU's is measured at startup
(fit_call_cost) and is thousands: there, batches fill up.

next_batch chooses the serving queue's next batch, vectorised: a sort and a few numpy
passes over a bounded window of the queue, whatever the batch size, so planning stays
about a microsecond per row at GPU speed (an exact dynamic programme per batch, in Python
on the event loop, had capped a GPU server at a few percent of its engine). plan_batches
is the same choice repeated over a set queued at once (the bulk command's chunks).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

GRID_SIDE = 64  # next_batch scores at most GRID_SIDE^2 candidate runs


def bucket(length: int, buckets: tuple[int, ...]) -> int:
    return next((i for i, edge in enumerate(buckets) if length <= edge), len(buckets))


def plan_batches(lengths: Sequence[int], max_tokens: int, max_rows: int,
                 buckets: tuple[int, ...] = (), call_cost_tokens: int = 0,
                 window: int | None = None) -> list[list[int]]:
    """Indices of `lengths` grouped into batches as the serving queue groups rows queued at
    once for one backend slot: next_batch over the oldest `window` rows (all: None), again
    and again. A pure function of its arguments: the bulk command plans a chunk with it, so
    its batches, and their float32 bytes, are the server's for the same request."""
    order = np.arange(len(lengths))
    widths = np.asarray(lengths, dtype=np.int64)
    batches = []
    while order.size:
        head = order[:window] if window else order
        chosen = np.sort(next_batch(widths[head], max_tokens, max_rows, buckets,
                                    call_cost_tokens))
        batches.append(head[chosen].tolist())
        keep = np.ones(head.size, dtype=bool)
        keep[chosen] = False
        order = np.concatenate((head[keep], order[head.size:]))
    return batches


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
    sums = np.concatenate(([0], np.cumsum(widths)))
    waste = padded - (sums[b] - sums[a])
    if call_cost_tokens > 0:
        score = -(call_cost_tokens + waste) / rows + 1e-9 * rows
    else:
        score = rows - 1e-9 * waste  # most rows, then least padding
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
