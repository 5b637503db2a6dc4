"""Cost-based batching: fixed cost per backend call + padded tokens, chosen greedily around
the oldest row (next_batch), within a few percent of the exact optimum."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from runtime.pipeline.batch_plan import bucket, fit_call_cost, next_batch, plan_batches


def cost(batches: list[list[int]], lengths: list[int], call_cost: int) -> int:
    return sum(call_cost + len(b) * max(lengths[i] for i in b) for b in batches)


def brute_force(lengths: list[int], max_tokens: int, max_rows: int, call_cost: int) -> int:
    """Cheapest split of the sorted rows into contiguous groups, by trying every cut set."""
    widths = sorted(lengths)
    n = len(widths)
    best: int | None = None
    for mask in itertools.product((0, 1), repeat=n - 1):
        cuts = [0] + [i + 1 for i, cut in enumerate(mask) if cut] + [n]
        groups = [widths[a:b] for a, b in zip(cuts, cuts[1:])]
        if any(len(g) > 1 and (len(g) > max_rows or len(g) * g[-1] > max_tokens) for g in groups):
            continue
        total = sum(call_cost + len(g) * g[-1] for g in groups)
        best = total if best is None else min(best, total)
    assert best is not None  # the all-singletons split is always within the limits
    return best


def test_mixed_lengths_are_split_where_padding_costs_more_than_a_call() -> None:
    lengths = [12, 60, 14, 58, 13, 61]
    batches = plan_batches(lengths, 16384, 64, call_cost_tokens=32)
    assert batches == [[0, 2, 4], [1, 3, 5]]
    # One batch would pad the three short rows to 61: 32 + 6*61 = 398 > 2*32 + 3*14 + 3*61.
    assert cost(batches, lengths, 32) == 2 * 32 + 3 * 14 + 3 * 61


def test_a_gpu_sized_call_cost_keeps_them_together() -> None:
    lengths = [12, 60, 14, 58, 13, 61]  # padding is cheap next to a 3,000-token call
    assert plan_batches(lengths, 16384, 64, call_cost_tokens=3000) == [[0, 1, 2, 3, 4, 5]]


def test_similar_lengths_stay_in_one_call() -> None:
    lengths = [20, 22, 21, 25, 24]
    assert plan_batches(lengths, 16384, 64, call_cost_tokens=32) == [[0, 1, 2, 3, 4]]


def test_without_call_cost_batches_fill_greedily() -> None:
    lengths = [12, 60, 14, 58, 13, 61]
    assert plan_batches(lengths, 16384, 64, call_cost_tokens=0) == [[0, 1, 2, 3, 4, 5]]
    assert plan_batches(lengths, 16384, 4, call_cost_tokens=0) == [[0, 2, 3, 4], [1, 5]]


def test_next_batch_holds_the_oldest_row_and_a_run_of_sorted_lengths() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        lengths = rng.integers(1, 120, rng.integers(1, 200))
        max_rows, max_tokens = int(rng.integers(1, 80)), int(rng.choice([64, 512, 16384]))
        call = int(rng.choice([0, 8, 500, 4000]))
        buckets = tuple(sorted({int(b) for b in rng.integers(1, 120, rng.integers(0, 3))}))
        chosen = next_batch(lengths, max_tokens, max_rows, buckets, call)
        assert 0 in chosen.tolist() and len(set(chosen.tolist())) == len(chosen)
        widths = lengths[chosen]
        assert len(chosen) == 1 or (len(chosen) <= max_rows
                                    and len(chosen) * widths.max() <= max_tokens)
        assert {bucket(int(w), buckets) for w in widths} == {bucket(int(lengths[0]), buckets)}
        # a run of the sorted order: no row left out whose length lies strictly inside it
        inside = (lengths > widths.min()) & (lengths < widths.max())
        assert set(np.flatnonzero(inside).tolist()) <= set(chosen.tolist())


def test_batches_cover_every_row_once_within_the_limits() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(5, 300) for _ in range(700)]
    batches = plan_batches(lengths, 4096, 64, call_cost_tokens=32, window=256)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 64 and len(b) * max(lengths[i] for i in b) <= 4096 for b in batches)


def test_total_cost_is_within_a_few_percent_of_the_optimum() -> None:
    rng = random.Random(7)
    ours = best = 0
    for _ in range(300):
        lengths = [rng.randint(1, 80) for _ in range(rng.randint(1, 10))]
        max_tokens, max_rows = rng.choice([64, 160, 1000]), rng.randint(1, 5)
        call = rng.choice([8, 32, 60, 500])
        batches = plan_batches(lengths, max_tokens, max_rows, call_cost_tokens=call)
        optimum = brute_force(lengths, max_tokens, max_rows, call)
        mine = cost(batches, lengths, call)
        assert mine <= 1.6 * optimum, (lengths, max_tokens, max_rows, call, batches)
        ours, best = ours + mine, best + optimum
    assert ours <= 1.04 * best  # measured 1.02 here: the greedy choice is near the programme


def test_planning_a_gpu_sized_window_stays_cheap() -> None:
    """A 256-row batch from a 1,024-row window scores a bounded grid (GRID_SIDE^2), not
    rows x max_rows cells: check it by the result, not by time."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 60, 1024)
    chosen = next_batch(lengths, 16384, 256, (), 4000)
    assert 200 <= len(chosen) <= 256 and len(chosen) * lengths[chosen].max() <= 16384


def test_call_cost_is_the_fitted_lines_intercept_over_its_slope() -> None:
    # 2.64 ms per call + 0.68 us per token (issue 26's H200 figures): ~3,882 tokens
    samples = [(n, 2.64e-3 + n * 0.68e-6) for n in (32, 1024, 2048)]
    assert fit_call_cost(samples, 16384) == 3882
    assert fit_call_cost([(32, 1.0e-3), (2048, 0.9e-3)], 16384) == 16384  # flat: fill up
    assert fit_call_cost([(32, 0.0), (2048, 1.0)], 16384) == 1  # no fixed cost: at least 1
    with pytest.raises(ValueError):
        fit_call_cost([(32, 1.0), (32, 2.0)], 16384)
