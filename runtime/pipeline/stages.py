"""The stages a model's pipeline lends its adapter while a request is prepared
(runtime.adapters.base.Stages): tokenising off the event loop, image loading in a pool of
its own, and submitting rows to a tower's batcher. The Embedder owns one; so do its chunked
and multi-head paths, which tokenise the same way."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence, TypeVar

from PIL import Image

from runtime.adapters.media import load_image
from runtime.config import RuntimeConfig
from runtime.pipeline.batcher import Batcher
from runtime.pipeline.tokenize_queue import TokenizeQueue
from runtime.tokenizer import TextTokenizer

INLINE_TOKENIZE_CHARS = 1024  # rerank requests up to this many characters tokenise on the loop
A = TypeVar("A")
R = TypeVar("R")


class PipelineStages:
    """Tokeniser threads (a queue that merges requests' texts, and a pool for pairs and
    re-encoding), the media pool, and the batchers by tower name."""

    def __init__(self, tokenizer: TextTokenizer, config: RuntimeConfig,
                 batchers: Mapping[str, Batcher]):
        self.tokenizer = tokenizer
        self.media = config.media
        self.batchers = batchers
        self.pool = ThreadPoolExecutor(config.tokenizers(), thread_name_prefix="pairs")
        self.queue = TokenizeQueue(tokenizer.encode_raw, config.tokenizers())
        self.media_pool = ThreadPoolExecutor(config.media.threads, thread_name_prefix="media")

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.queue.close()
        self.media_pool.shutdown(wait=False)

    async def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids, uncut (no length check), off the loop with other requests' texts."""
        return await self.queue.encode(texts)

    async def in_pool(self, fn: Callable[..., R], *args: Any) -> R:
        """fn(*args) on a tokeniser thread: CPU work too long for the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def tokenize(self, texts: Sequence[str], truncate: bool) -> list[list[int]]:
        rows = await self.queue.encode(texts)
        max_len = self.tokenizer.max_len
        if truncate and any(len(row) > max_len for row in rows):  # re-encoded, cut: rare
            return await self.in_pool(self.tokenizer.fit, texts, rows, truncate)
        return self.tokenizer.fit(texts, rows, truncate)  # too long: 400

    async def tokenize_pairs(self, query: str, documents: Sequence[str],
                             truncate: bool) -> list[tuple[list[int], list[int]]]:
        chars = len(query) * len(documents) + sum(map(len, documents))
        if chars <= INLINE_TOKENIZE_CHARS:
            return self.tokenizer.encode_pairs(query, documents, truncate)
        return await self.in_pool(self.tokenizer.encode_pairs, query, documents, truncate)

    async def load_images(self, sources: Sequence[str]) -> list[Image.Image]:
        return await self.off_loop(lambda s: load_image(s, self.media), sources)

    async def off_loop(self, fn: Callable[[A], R], args: Sequence[A]) -> list[R]:
        """fn over args in the media pool (decoding and preprocessing images)."""
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(self.media_pool, fn, a)
                                           for a in args)))

    async def submit(self, tower: str, rows: Sequence[Any]) -> Any:
        return await self.batchers[tower].submit(rows)
