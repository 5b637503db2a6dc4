"""Cost-based batch cuts: fixed cost per backend call + padded tokens, minimised exactly."""

from __future__ import annotations

import itertools
import random

from runtime.batch_plan import EXACT_PLAN_ROWS, plan_batches


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
    assert sorted(map(sorted, batches)) == [[0, 2, 4], [1, 3, 5]]
    # One batch would pad the three short rows to 61: 32 + 6*61 = 398 > 2*32 + 3*14 + 3*61.
    assert cost(batches, lengths, 32) == 2 * 32 + 3 * 14 + 3 * 61


def test_similar_lengths_stay_in_one_call() -> None:
    lengths = [20, 22, 21, 25, 24]
    assert plan_batches(lengths, 16384, 64, call_cost_tokens=32) == [[0, 2, 1, 4, 3]]


def test_without_call_cost_batches_fill_greedily() -> None:
    lengths = [12, 60, 14, 58, 13, 61]
    assert plan_batches(lengths, 16384, 64, call_cost_tokens=0) == [[0, 4, 2, 3, 1, 5]]


def test_exact_plan_matches_brute_force_and_respects_limits() -> None:
    rng = random.Random(7)
    for _ in range(300):
        lengths = [rng.randint(1, 80) for _ in range(rng.randint(1, 9))]
        max_tokens, max_rows, call = rng.choice([64, 160, 1000]), rng.randint(1, 5), rng.randint(0, 60)
        batches = plan_batches(lengths, max_tokens, max_rows, call_cost_tokens=call)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            assert len(b) == 1 or (len(b) <= max_rows and len(b) * max(lengths[i] for i in b) <= max_tokens)
        if call:
            assert cost(batches, lengths, call) == brute_force(lengths, max_tokens, max_rows, call)


def test_many_rows_fall_back_to_greedy_within_limits() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(5, 300) for _ in range(EXACT_PLAN_ROWS + 50)]
    batches = plan_batches(lengths, 4096, 64, call_cost_tokens=32)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 64 and len(b) * max(lengths[i] for i in b) <= 4096 for b in batches)
