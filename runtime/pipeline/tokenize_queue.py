"""Texts of concurrent requests tokenised together, off the event loop.

Tokenising costs ~45 us of CPU per sentence here (HF tokenizers, BERT WordPiece, a 2-core
AMD EPYC), and a thread hop per request (run_in_executor) costs the loop about as much
again; on the loop itself it capped a server at ~2,000 one-sentence requests/s. Here a
request only queues its texts with a future; each worker thread takes everything queued
(about CHUNK_TEXTS; a larger request goes in pieces to several workers), encodes it in one call with the GIL released, and hands the rows back
to the loop in one callback per call. Under load one call serves many requests; an idle
server's single request waits only for the hop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

Encode = Callable[[list[str]], list[list[int]]]
# Texts per encode call, about: a worker takes queued requests until it has this many, and
# a larger request is queued in pieces of this size, so its pieces go to several workers at
# once and its first rows reach the batcher (and the device) while the rest are tokenised.
CHUNK_TEXTS = 64


@dataclass(eq=False)
class _Pending:
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class TokenizeQueue:
    def __init__(self, encode: Encode, threads: int):
        self._encode = encode
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"tokenize_{i}", daemon=True)
                         for i in range(max(1, threads))]
        for thread in self._threads:
            thread.start()

    async def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text (the `encode` function's rows), in order."""
        loop = asyncio.get_running_loop()
        if len(texts) <= CHUNK_TEXTS:
            future = loop.create_future()
            self._queue.put(_Pending(list(texts), future, loop))
            return await future
        futures = []
        for start in range(0, len(texts), CHUNK_TEXTS):
            futures.append(loop.create_future())
            self._queue.put(_Pending(list(texts[start:start + CHUNK_TEXTS]), futures[-1], loop))
        try:
            parts = await asyncio.gather(*futures)
        finally:
            for future in futures:  # a failed or cancelled piece: the others are not awaited
                future.cancel()
        return [row for part in parts for row in part]

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            try:
                results: Sequence[list[list[int]] | BaseException] = _split(
                    self._encode([t for p in batch for t in p.texts]), batch)
            except Exception:  # one bad request must not fail the others: each on its own
                results = [self._alone(p) for p in batch]
            by_loop: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
            for pending, result in zip(batch, results):
                by_loop[pending.loop].append((pending.future, result))
            for loop, answers in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_deliver, answers)
                except RuntimeError:  # that loop has closed: nobody is waiting
                    pass

    def _take(self) -> list[_Pending] | None:
        """The next requests to encode together (blocking); None: close."""
        first = self._queue.get()
        if first is None:
            return None
        batch, count = [first], len(first.texts)
        while count < CHUNK_TEXTS:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # close: finish this batch, then stop
                self._queue.put(None)
                break
            batch.append(item)
            count += len(item.texts)
        return batch

    def _alone(self, pending: _Pending) -> list[list[int]] | BaseException:
        try:
            return self._encode(pending.texts)
        except Exception as exc:
            return exc


def _split(rows: list[list[int]], batch: Sequence[_Pending]) -> list[list[list[int]]]:
    out, start = [], 0
    for pending in batch:
        out.append(rows[start:start + len(pending.texts)])
        start += len(pending.texts)
    return out


def _deliver(answers: Sequence[tuple[asyncio.Future, list[list[int]] | BaseException]]
             ) -> None:
    for future, result in answers:
        if future.done():  # the request was cancelled (its client left)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
