"""Texts of concurrent requests tokenised together off the loop: each request gets its own
rows back, a bad text fails only its own request, a cancelled one is skipped."""

from __future__ import annotations

import asyncio
import threading

import pytest

from runtime.pipeline.tokenize_queue import TokenizeQueue


class Encoder:
    """Rows that say which text they came from; the first call can be held."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def __call__(self, texts: list[str]) -> list[list[int]]:
        self.entered.set()
        self.hold.wait(10)
        self.calls.append(list(texts))
        if "bad" in texts:
            raise ValueError("cannot encode 'bad'")
        return [[len(t), int(t.split("-")[1])] for t in texts]


async def held(threads: int) -> tuple[Encoder, TokenizeQueue, asyncio.Task]:
    """A queue whose worker is inside its first call (["t-0"]), held until encoder.hold."""
    encoder = Encoder()
    encoder.hold.clear()
    tokenize = TokenizeQueue(encoder, threads=threads)
    first = asyncio.create_task(tokenize.encode(["t-0"]))
    await asyncio.to_thread(encoder.entered.wait, 10)
    return encoder, tokenize, first


async def test_concurrent_requests_each_get_their_own_rows_in_one_call() -> None:
    encoder, tokenize, first = await held(threads=1)
    texts = [[f"t-{i}" for i in range(r, r + 3)] for r in range(1, 30, 3)]
    rest = [asyncio.create_task(tokenize.encode(t)) for t in texts]
    await asyncio.sleep(0.05)  # all queued behind the held call
    encoder.hold.set()
    assert await first == [[3, 0]]
    results = await asyncio.gather(*rest)
    tokenize.close()
    for got, sent in zip(results, texts):
        assert got == [[len(t), int(t.split("-")[1])] for t in sent]
    assert len(encoder.calls) == 2  # the ten queued requests went in one call
    assert len(encoder.calls[1]) == 30


async def test_a_bad_text_fails_only_its_own_request() -> None:
    encoder, tokenize, first = await held(threads=1)
    good = asyncio.create_task(tokenize.encode(["t-1", "t-2"]))
    bad = asyncio.create_task(tokenize.encode(["t-3", "bad"]))
    also_good = asyncio.create_task(tokenize.encode(["t-4"]))
    await asyncio.sleep(0.05)
    encoder.hold.set()
    await first
    assert await good == [[3, 1], [3, 2]]
    with pytest.raises(ValueError, match="cannot encode 'bad'"):
        await bad
    assert await also_good == [[3, 4]]
    tokenize.close()


async def test_a_cancelled_request_is_skipped_and_the_rest_answered() -> None:
    encoder, tokenize, first = await held(threads=2)
    gone = asyncio.create_task(tokenize.encode(["t-5"]))
    kept = asyncio.create_task(tokenize.encode(["t-6"]))
    await asyncio.sleep(0.05)
    gone.cancel()
    encoder.hold.set()
    assert await first == [[3, 0]]
    assert await kept == [[3, 6]]
    assert gone.cancelled()
    tokenize.close()


async def test_a_large_request_goes_in_pieces_and_comes_back_in_order() -> None:
    from runtime.pipeline.tokenize_queue import CHUNK_TEXTS

    encoder = Encoder()
    tokenize = TokenizeQueue(encoder, threads=2)
    texts = [f"t-{i}" for i in range(2 * CHUNK_TEXTS + 22)]
    rows = await tokenize.encode(texts)
    tokenize.close()
    assert rows == [[len(t), int(t.split("-")[1])] for t in texts]
    assert sorted(len(call) for call in encoder.calls) == [22, CHUNK_TEXTS, CHUNK_TEXTS]
