"""bench/serving.py's pure parts: what a run reports and how targets are judged."""

from __future__ import annotations

from bench.serving import ServingRun, table, targets
from bench.standin import StandInCost, expected, signature
from runtime.backends.base import pad_batch


def run(size: int, clients: int, cpu_s: float, ids: bool = False) -> ServingRun:
    requests = 100
    rows = requests * size
    return ServingRun(size, clients, requests, rows, rows * 30, 2.0, (0.01,) * requests, cpu_s,
                      1_000_000.0, ids)


def test_cpu_per_row_and_per_request_are_judged_against_issue_26s_targets() -> None:
    lines = targets([run(64, 8, 6400 * 29e-6), run(1, 64, 100 * 301e-6),
                     run(64, 8, 6400 * 31e-6, ids=True)])
    assert lines == [
        "- server CPU per row, 64 sentences per request x 8: 29 us (target <= 30 us) **met**",
        "- server CPU per request, 1 sentences per request x 64: 301 us (target <= 300 us) "
        "**missed**",
        "- server CPU per row, 64 token-id rows per request x 8: 31 us (target <= 30 us) "
        "**missed**"]


def test_table_reports_throughput_as_a_share_of_the_ceiling() -> None:
    row = table([run(64, 8, 0.1)])[2]
    # 6,400 rows x 30 tokens in 2 s = 96,000 tokens/s of a 1,000,000 ceiling
    assert row.startswith("| 64-sentence | 8 | 96,000 | 10% | 50 | 10.0 | 10.0 |")


def test_the_stand_ins_vectors_say_what_it_was_fed() -> None:
    rows = [[5, 6, 7], [9], [1, 2]]
    ids, mask = pad_batch(rows)
    assert (signature(ids, mask, 4) == expected(rows, 4)).all()
    assert expected(rows, 4)[:, :2].tolist() == [[3, 18], [1, 9], [2, 3]]
    assert StandInCost().seconds(1000) == 2.64e-3 + 1000 * 0.68e-6
