"""The batcher's load-shedding: queue cap with Retry-After, queue-wait limit, cancellation,
shutdown. The backend is a plain function held by a threading.Event, so whatever happens
while it is held cannot have come from it."""

from __future__ import annotations

import asyncio
import threading
from typing import Sequence

import numpy as np
import pytest

from runtime.pipeline.batcher import BatchConfig, Batcher
from runtime.errors import NotReadyError, OverloadedError, QueueTimeoutError


class HeldBackend:
    """Vectors that encode their own row ([sum, len]) so mix-ups would show."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.rows: list[Sequence[int]] = []

    def __call__(self, rows: list[Sequence[int]]) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(30)
        self.rows.extend(rows)
        return np.array([[sum(r), len(r)] for r in rows], dtype=np.float32)


async def held(cfg: BatchConfig) -> tuple[Batcher, HeldBackend, asyncio.Task]:
    """A started batcher whose backend is busy with one parked row ([7])."""
    backend = HeldBackend()
    batcher = Batcher(backend, cfg)
    batcher.start()
    parked = asyncio.create_task(batcher.submit([[7]]))
    await asyncio.to_thread(backend.entered.wait, 30)
    return batcher, backend, parked


async def test_full_queue_raises_overloaded_at_once_with_a_sane_retry_after() -> None:
    batcher, backend, parked = await held(BatchConfig(max_queue_rows=4))
    queued = asyncio.create_task(batcher.submit([[1], [2], [3]]))
    await asyncio.sleep(0)
    assert batcher.queue_rows == 3
    with pytest.raises(OverloadedError) as info:
        await batcher.submit([[4], [5]])
    assert 1 <= info.value.retry_after_s <= 60
    backend.gate.set()
    assert (await queued)[:, 0].tolist() == [1, 2, 3]
    await parked
    await batcher.stop()


async def test_retry_after_follows_the_measured_drain_rate() -> None:
    batcher = Batcher(HeldBackend(), BatchConfig(max_queue_rows=10))
    batcher._rows_per_s = 2.0  # as measured: 2 rows/s, so 30 rows take 15 s
    assert batcher._drain_estimate_s(30) == 15.0
    assert batcher._drain_estimate_s(10_000) == 60.0  # capped: clients retry, not give up
    batcher._rows_per_s = 1e6
    assert batcher._drain_estimate_s(3) == 1.0


async def test_queue_wait_limit_fails_unstarted_requests_and_never_runs_them() -> None:
    batcher, backend, parked = await held(BatchConfig(max_queue_wait_ms=50))
    with pytest.raises(QueueTimeoutError, match="waited 50 ms"):
        await batcher.submit([[1], [2]])
    assert batcher.queue_rows == 0
    backend.gate.set()
    await parked
    await batcher.submit([[3]])
    assert backend.rows == [[7], [3]]  # the timed-out rows never reached the backend
    await batcher.stop()


async def test_cancelled_request_leaves_the_queue_immediately() -> None:
    batcher, backend, parked = await held(BatchConfig())
    gone = asyncio.create_task(batcher.submit([[1], [2], [3]]))
    kept = asyncio.create_task(batcher.submit([[4]]))
    await asyncio.sleep(0)
    assert batcher.queue_rows == 4
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert batcher.queue_rows == 1
    backend.gate.set()
    assert (await kept).tolist() == [[4.0, 1.0]]
    await parked
    assert backend.rows == [[7], [4]]
    await batcher.stop()


async def test_stop_tells_still_queued_requests_instead_of_leaving_them_hanging() -> None:
    batcher, backend, parked = await held(BatchConfig())
    waiting = asyncio.create_task(batcher.submit([[1]]))
    await asyncio.sleep(0)
    stopping = asyncio.create_task(batcher.stop())
    await asyncio.sleep(0)  # the batcher loop is cancelled while the backend is busy
    backend.gate.set()
    await parked  # the batch already at the backend completes
    await stopping
    with pytest.raises(NotReadyError, match="shutting down"):
        await waiting
