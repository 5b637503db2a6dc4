"""The batcher: token budget with padding, per-request results, order, cancellation."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import replace
from typing import Sequence

import numpy as np
import pytest

from runtime.pipeline.batcher import BACKEND_NICE, BatchConfig, Batcher, plan_batches
from runtime.errors import OverloadedError


def test_plan_batches_counts_padding_against_the_budget() -> None:
    # rows x longest row must fit: 3 rows of width 10 = 30 > 25. The oldest row (10) goes
    # first, with as many rows as fit (call_cost_tokens=0: greedy filling; this is about
    # the budget, not the cost model), the least padded of those: the other 10.
    cfg = BatchConfig(max_batch_tokens=25, max_batch_size=64, call_cost_tokens=0)
    assert plan_batches([10, 2, 10, 3], cfg) == [[0, 2], [1, 3]]
    # One token more of budget does not let the third row in: padding counts.
    assert plan_batches([10, 2, 3], replace(cfg, max_batch_tokens=29)) == [[0, 2], [1]]
    assert plan_batches([10, 2, 3], replace(cfg, max_batch_tokens=30)) == [[0, 1, 2]]


def test_plan_batches_takes_the_oldest_row_first_and_caps_rows() -> None:
    lengths = [5, 1, 4, 2, 3, 6]
    batches = plan_batches(lengths, BatchConfig(max_batch_tokens=1000, max_batch_size=2))
    # each batch holds the oldest row left, with the nearest length beside it
    assert batches == [[0, 2], [1, 3], [4, 5]]


def test_plan_batches_keeps_buckets_apart() -> None:
    cfg = BatchConfig(max_batch_tokens=10_000, max_batch_size=64, seq_buckets=(8, 64),
                      call_cost_tokens=0)
    batches = plan_batches([3, 50, 7, 9, 100], cfg)
    assert batches == [[0, 2], [1, 3], [4]]


def test_a_row_longer_than_the_budget_still_runs_alone() -> None:
    assert plan_batches([50, 3], BatchConfig(max_batch_tokens=16)) == [[0], [1]]


class RecordingBackend:
    """Embeds a row as [first token, length]; records every batch it ran."""

    def __init__(self, gate: threading.Event | None = None):
        self.batches: list[list[list[int]]] = []
        self.gate = gate

    def __call__(self, rows: list[Sequence[int]]) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append([list(r) for r in rows])
        return np.array([[r[0], len(r)] for r in rows], dtype=np.float32)


async def test_each_request_gets_its_own_vectors_in_order() -> None:
    backend = RecordingBackend()
    batcher = Batcher(backend, BatchConfig(max_batch_tokens=64, max_batch_size=4, max_wait_ms=5))
    batcher.start()
    requests = [[[i * 10 + j] * (1 + (i + j) % 5) for j in range(1 + i % 3)] for i in range(20)]
    results = await asyncio.gather(*(batcher.submit(r) for r in requests))
    await batcher.stop()
    for rows, out in zip(requests, results):
        expected = np.array([[r[0], len(r)] for r in rows], dtype=np.float32)
        np.testing.assert_array_equal(out, expected)
    for batch in backend.batches:  # the budget held for every batch that ran
        assert len(batch) <= 4 and len(batch) * max(map(len, batch)) <= 64
    assert len(backend.batches) < sum(len(r) for r in requests)  # rows were batched


async def test_a_cancelled_requests_rows_never_reach_the_backend() -> None:
    gate = threading.Event()
    backend = RecordingBackend(gate)
    batcher = Batcher(backend, BatchConfig(max_batch_tokens=1000, max_batch_size=1))
    batcher.start()
    first = asyncio.create_task(batcher.submit([[1, 1]]))  # occupies the backend
    await asyncio.sleep(0.05)
    doomed = asyncio.create_task(batcher.submit([[7, 7, 7], [8, 8]]))
    kept = asyncio.create_task(batcher.submit([[9]]))
    await asyncio.sleep(0.05)
    doomed.cancel()
    gate.set()
    assert (await first).tolist() == [[1, 2]]
    assert (await kept).tolist() == [[9, 1]]
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await batcher.stop()
    ran = [row[0] for batch in backend.batches for row in batch]
    assert 7 not in ran and 8 not in ran
    assert ran == [1, 9]


async def test_the_oldest_row_goes_first_even_when_long() -> None:
    gate = threading.Event()
    backend = RecordingBackend(gate)
    batcher = Batcher(backend, BatchConfig(max_batch_tokens=8, max_batch_size=8))
    batcher.start()
    blocker = asyncio.create_task(batcher.submit([[0]]))
    await asyncio.sleep(0.05)
    old_long = asyncio.create_task(batcher.submit([[5] * 8]))
    shorts = [asyncio.create_task(batcher.submit([[6]])) for _ in range(4)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(blocker, old_long, *shorts)
    await batcher.stop()
    assert backend.batches[1] == [[5] * 8]  # not starved by the shorter rows behind it


async def test_full_queue_is_refused_at_once() -> None:
    gate = threading.Event()
    batcher = Batcher(RecordingBackend(gate), BatchConfig(max_queue_rows=3, max_batch_size=1))
    batcher.start()
    running = asyncio.create_task(batcher.submit([[1]]))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(batcher.submit([[2], [3]]))
    await asyncio.sleep(0.01)
    with pytest.raises(OverloadedError):
        await batcher.submit([[4], [5]])
    gate.set()
    await asyncio.gather(running, queued)
    await batcher.stop()


async def test_a_backend_failure_reaches_only_that_batchs_requests() -> None:
    def flaky(rows: list[Sequence[int]]) -> np.ndarray:
        if any(r[0] == 13 for r in rows):
            raise RuntimeError("boom")
        return np.array([[r[0], len(r)] for r in rows], dtype=np.float32)

    batcher = Batcher(flaky, BatchConfig(max_batch_size=1))
    batcher.start()
    outcomes = await asyncio.gather(batcher.submit([[13]]), batcher.submit([[2]]),
                                    return_exceptions=True)
    await batcher.stop()
    bad, good = outcomes
    assert isinstance(bad, RuntimeError)
    assert isinstance(good, np.ndarray) and good.tolist() == [[2, 1]]


async def test_idle_slots_share_the_queue() -> None:
    """16 rows queued while every slot is idle: each of the 4 slots gets 4, instead of one
    batch of 16 leaving three cores with nothing to do."""
    backend = RecordingBackend()
    batcher = Batcher(backend, BatchConfig(max_batch_tokens=10_000, max_batch_size=64,
                                           concurrency=4, call_cost_tokens=0, max_wait_ms=50))
    batcher.start()
    rows = [[i, i] for i in range(16)]
    out = await batcher.submit(rows)
    await batcher.stop()
    assert sorted(len(b) for b in backend.batches) == [4, 4, 4, 4]
    np.testing.assert_array_equal(out, [[i, 2] for i in range(16)])


async def test_a_busy_slot_leaves_the_whole_queue_to_the_free_one() -> None:
    gate = threading.Event()
    ran: list[list[int]] = []

    def run(rows: list[Sequence[int]]) -> np.ndarray:
        if rows[0][0] == 1:  # the first request holds its slot until the end
            gate.wait(5)
        ran.append([r[0] for r in rows])
        return np.zeros((len(rows), 2), dtype=np.float32)

    batcher = Batcher(run, BatchConfig(max_batch_tokens=10_000, max_batch_size=64,
                                       concurrency=2, call_cost_tokens=0))
    batcher.start()
    busy = asyncio.create_task(batcher.submit([[1]]))
    await asyncio.sleep(0.05)
    await batcher.submit([[3]] * 6)  # runs while the other slot is still busy
    gate.set()
    await busy
    await batcher.stop()
    assert ran == [[3] * 6, [1]]  # one batch: no share was kept back for the busy slot


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priority is POSIX")
async def test_backend_threads_run_below_the_event_loop() -> None:
    seen: list[int] = []

    def run(rows: list[Sequence[int]]) -> np.ndarray:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return np.zeros((len(rows), 2), dtype=np.float32)

    batcher = Batcher(run, BatchConfig())
    batcher.start()
    await batcher.submit([[1]])
    await batcher.stop()
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [loop_nice + BACKEND_NICE]
