"""Asyncio dynamic batcher: rows from concurrent requests packed by a padded-token budget.

Each request's rows go into one pending list; whenever a backend slot is free, the oldest
WINDOW rows of it are planned (runtime/batch_plan.next_batch: vectorised, microseconds per
row) and the cheapest batch holding the oldest row runs next, its padded size (rows x
longest row) within the token budget (length-aware, yet nobody starves). Several batches
are in flight at once (`concurrency`: CPU cores, TensorRT contexts, CUDA sessions), so the
host pads, copies and answers one while the device runs another. A slot takes at most its
share of the queue when other slots are idle too (on CPU a slot is a core). Results go back
to each request's own future; rows of a cancelled request are dropped before they reach
the backend. No polling: waits are on events and futures. Backend threads run below the
event loop's priority (BACKEND_NICE).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from runtime.pipeline import batch_plan
from runtime.pipeline.rows import gather_rows, place_rows
from runtime.errors import NotReadyError, OverloadedError, QueueTimeoutError
from runtime.settings import (CPU_CALL_COST_TOKENS, DEFAULT_BATCH_SIZE, DEFAULT_BATCH_TOKENS,
                              DEFAULT_MAX_QUEUE, DEFAULT_MAX_WAIT_MS)


@dataclass(frozen=True)
class BatchConfig:
    # Rows x longest row, padding included. None: the backend's preference
    # (BackendLimits.max_batch_tokens), else DEFAULT_BATCH_TOKENS.
    max_batch_tokens: int | None = None
    max_batch_size: int = DEFAULT_BATCH_SIZE
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS  # gather window once the backend is idle
    max_queue_rows: int = DEFAULT_MAX_QUEUE  # pending rows beyond which requests get 429
    concurrency: int = 1  # batches in flight (TensorRT: one per execution context)
    seq_buckets: tuple[int, ...] = ()  # rows of one batch stay within one bucket
    # A request none of whose rows reached the backend within this wait gets 503 (0: no limit).
    max_queue_wait_ms: float = 0.0
    # A backend call's fixed cost in padded tokens: batches are split where padding costs
    # more than another call (runtime/pipeline/batch_plan.py). 0: fill batches greedily.
    call_cost_tokens: int = CPU_CALL_COST_TOKENS


# Rows of the queue's head that planning looks at: its cost per batch stays bounded however
# deep the queue (rows further back wait for the head anyway).
WINDOW_MIN_ROWS = 256
WINDOW_BATCHES = 4


def window_rows(cfg: BatchConfig) -> int:
    return max(WINDOW_MIN_ROWS, WINDOW_BATCHES * cfg.max_batch_size)


def plan_batches(lengths: Sequence[int], cfg: BatchConfig) -> list[list[int]]:
    """Indices of `lengths` grouped into batches as one slot of a Batcher with cfg's limits
    takes them when they are queued at once (runtime.pipeline.batch_plan.plan_batches)."""
    return batch_plan.plan_batches(lengths, cfg.max_batch_tokens or DEFAULT_BATCH_TOKENS,
                                   cfg.max_batch_size, cfg.seq_buckets, cfg.call_cost_tokens,
                                   window_rows(cfg))


@dataclass(eq=False)
class _Job:
    future: asyncio.Future
    out: list[np.ndarray | None]
    remaining: int
    created: float = field(default_factory=time.monotonic)
    started: bool = False  # a row reached a batch: the queue-wait limit no longer applies

    def deliver(self, index: int, vector: np.ndarray) -> None:
        self.out[index] = vector
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(gather_rows(self.out))


@dataclass(eq=False, slots=True)
class _Row:
    job: _Job
    index: int
    tokens: Sequence[int]


BACKEND_NICE = 5  # added to the backend threads' niceness (Linux: per thread)


def _yield_to_event_loop() -> None:
    """Backend threads run at a lower priority than the event loop: on a CPU backend they
    share its cores, and a loop that waits for a core delays parsing the requests and
    writing the answers that keep the batches full."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKEND_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: same priority then
        pass


RunFn = Callable[[list[Sequence[int]]], np.ndarray]
# Called after every backend run: (rows, padded tokens, seconds) - metrics hook.
BatchObserver = Callable[[int, int, float], None]


class Batcher:
    def __init__(self, run: RunFn, cfg: BatchConfig):
        self._run = run
        self.cfg = cfg
        self._pending: list[_Row] = []
        self._lengths: list[int] = []  # len() of each pending row, planned as one array
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(cfg.concurrency)
        self._free_slots = cfg.concurrency  # slots neither planning nor running a batch
        self._executor = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="backend",
                                            initializer=_yield_to_event_loop)
        self._task: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()
        self.batches_run = 0  # observability and tests
        self.rows_run = 0
        self.on_batch: BatchObserver | None = None
        self._rows_per_s = 0.0  # moving average of backend throughput, for Retry-After

    @property
    def queue_rows(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._inflight, return_exceptions=True)
        # The server drained its requests before stopping us; whatever is still queued
        # (drain timeout passed) is told so rather than left waiting forever.
        for job in {r.job for r in self._pending}:
            if not job.future.done():
                job.future.set_exception(NotReadyError("The server is shutting down."))
        self._pending, self._lengths = [], []
        # Batches not started are dropped (a bulk run stopped by Ctrl-C has chunks queued
        # here); the running ones finish, their threads cannot be interrupted.
        self._executor.shutdown(wait=True, cancel_futures=True)

    def admit(self, n_rows: int) -> None:
        """Raise OverloadedError (429) at once if `n_rows` more would overflow the queue."""
        queued = len(self._pending)
        if queued + n_rows <= self.cfg.max_queue_rows:
            return
        raise OverloadedError(
            f"The server is overloaded: {queued} inputs are queued. Retry later.",
            retry_after_s=self._drain_estimate_s(queued + n_rows))

    def _drain_estimate_s(self, rows: int) -> float:
        """How long the queue takes to drain at the recent rate, kept within [1, 60] s."""
        rate = self._rows_per_s * self.cfg.concurrency
        return min(60.0, max(1.0, rows / rate)) if rate > 0 else 1.0

    async def submit(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Embed `rows`; returns (len(rows), dims) in input order."""
        self.admit(len(rows))
        loop = asyncio.get_running_loop()
        job = _Job(loop.create_future(), [None] * len(rows), len(rows))
        job.future.add_done_callback(lambda _: self._forget(job))
        if self.cfg.max_queue_wait_ms > 0:
            timer = loop.call_later(self.cfg.max_queue_wait_ms / 1000, self._expire, job)
            job.future.add_done_callback(lambda _: timer.cancel())
        self._pending.extend(_Row(job, i, r) for i, r in enumerate(rows))
        self._lengths.extend(map(len, rows))
        self._arrived.set()
        return await job.future  # cancelling the caller cancels the future: rows get dropped

    async def run_planned(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Embed `rows` past the queue: planned once as one set (plan_batches, these limits)
        and run `concurrency` batches at a time on the backend threads. The batches are then
        a pure function of `rows`, whatever the timing (the bulk command's chunks: the same
        float32 bytes on every engine); the queue's re-planning after each batch, for rows
        that arrive meanwhile, is for requests. Returns (len(rows), dims) in input order."""
        loop = asyncio.get_running_loop()
        plan = plan_batches([len(r) for r in rows], self.cfg)
        outputs = await asyncio.gather(*(
            loop.run_in_executor(self._executor, self._run, [rows[i] for i in batch])
            for batch in plan))
        vectors = place_rows(plan, outputs, len(rows))
        self.batches_run += len(plan)
        self.rows_run += len(rows)
        return vectors

    def _expire(self, job: _Job) -> None:
        if not job.started and not job.future.done():
            job.future.set_exception(QueueTimeoutError(
                f"The request waited {self.cfg.max_queue_wait_ms:g} ms in the queue without "
                "reaching the model: the server is overloaded. Retry later."))

    def _forget(self, job: _Job) -> None:
        """A cancelled or failed job's queued rows leave the queue now, not at the next batch."""
        if job.remaining and any(r.job is job for r in self._pending):
            keep = [i for i, r in enumerate(self._pending) if r.job is not job]
            self._pending = [self._pending[i] for i in keep]
            self._lengths = [self._lengths[i] for i in keep]

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            self._free_slots -= 1
            try:
                batch = await self._next_batch()
            except BaseException:
                self._release()
                raise
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _next_batch(self) -> list[_Row]:
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
            await self._gather_window()
        window = min(len(self._pending), window_rows(self.cfg))
        # Idle slots share the queue: on CPU each slot is a core, and one batch taking
        # every row would leave the others idle until it returns.
        share = -(-len(self._pending) // (1 + self._free_slots))
        cfg = self.cfg
        chosen = batch_plan.next_batch(
            np.array(self._lengths[:window], dtype=np.int64),
            cfg.max_batch_tokens or DEFAULT_BATCH_TOKENS, min(cfg.max_batch_size, share),
            cfg.seq_buckets, cfg.call_cost_tokens)
        chosen.sort()  # arrival order: a request's rows stay together in the batch
        taken = chosen.tolist()
        batch = [self._pending[i] for i in taken]
        for row in batch:
            row.job.started = True
        keep = np.ones(window, dtype=bool)
        keep[chosen] = False
        kept = np.flatnonzero(keep).tolist()
        self._pending = [self._pending[i] for i in kept] + self._pending[window:]
        self._lengths = [self._lengths[i] for i in kept] + self._lengths[window:]
        return batch

    async def _gather_window(self) -> None:
        """After an idle spell, wait up to max_wait for company unless the budget is full."""
        deadline = time.monotonic() + self.cfg.max_wait_ms / 1000
        while (remaining := deadline - time.monotonic()) > 0:
            if len(self._pending) >= self.cfg.max_batch_size:
                return
            self._arrived.clear()
            try:
                # Not wait_for: on Python 3.11 it swallows a cancel (stop()) that lands as
                # the event fires, and the batcher then never stops.
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return

    async def _execute(self, batch: list[_Row]) -> None:
        try:
            live = [r for r in batch if not r.job.future.done()]
            if not live:
                return
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            try:
                vectors = await loop.run_in_executor(
                    self._executor, self._run, [r.tokens for r in live]
                )
            except Exception as exc:  # the backend failed: every job in the batch learns why
                for job in {r.job for r in live}:
                    if not job.future.done():
                        job.future.set_exception(exc)
                return
            self._record(live, time.perf_counter() - started)
            for row, vector in zip(live, vectors):
                if not row.job.future.done():
                    row.job.deliver(row.index, vector)
        finally:
            self._release()

    def _release(self) -> None:
        self._free_slots += 1
        self._slots.release()

    def _record(self, live: list[_Row], seconds: float) -> None:
        self.batches_run += 1
        self.rows_run += len(live)
        rate = len(live) / max(seconds, 1e-6)
        self._rows_per_s = rate if not self._rows_per_s else 0.8 * self._rows_per_s + 0.2 * rate
        if self.on_batch:
            self.on_batch(len(live), len(live) * max(len(r.tokens) for r in live), seconds)
