"""In-process runs: (a) sentence-transformers `encode`, (b) our Embedder without HTTP.

Both see the same sentences, thread count and call shapes: the whole corpus at batch 32
(throughput), one sentence per call and 32 sentences per call (latency). (b) also takes the
server's one-sentence load without HTTP: 16 callers of one sentence each, concurrently.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bench.stats import Run

Encode = Callable[[list[str]], np.ndarray]
CALLERS = 16  # as the server's concurrency-16 runs


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i:i + size]) for i in range(0, len(items) - size + 1, size)]


def _latency_runs(system: str, name: str, precision: str, encode: Encode,
                  sentences: Sequence[str], count_tokens: Callable[[Sequence[str]], int],
                  samples: int) -> list[Run]:
    runs = []
    for size in (1, 32):
        calls = chunks(sentences, size)[:samples if size == 1 else max(4, samples // 8)]
        encode(calls[0])  # warm-up
        latencies = []
        for call in calls:
            start = time.perf_counter()
            encode(call)
            latencies.append(time.perf_counter() - start)
        texts = [t for call in calls for t in call]
        runs.append(Run(system, f"{name}, {size} sentence{'s' * (size > 1)} per call",
                        precision, size, 1, len(texts), count_tokens(texts), sum(latencies),
                        tuple(latencies)))
    return runs


def concurrent_callers(embedder, loop: asyncio.AbstractEventLoop,  # type: ignore[no-untyped-def]
                       sentences: Sequence[str], concurrency: int) -> float:
    """Seconds for `concurrency` callers to embed every sentence, one per call, each
    caller sending its next sentence when its last one came back (the server's load)."""
    queue = iter(sentences)

    async def caller() -> None:
        for text in queue:  # one shared iterator: each sentence is taken once
            await embedder.embed_texts([text])

    async def all_callers() -> None:
        await asyncio.gather(*(caller() for _ in range(concurrency)))

    start = time.perf_counter()
    loop.run_until_complete(all_callers())
    return time.perf_counter() - start


def sentence_transformers_runs(checkpoint: Path, sentences: Sequence[str], threads: int,
                               count_tokens: Callable[[Sequence[str]], int],
                               samples: int) -> tuple[list[Run], np.ndarray]:
    """(a): what a user runs instead of us. Returns its runs and its corpus vectors."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(checkpoint), device="cpu")

    def encode(texts: list[str], batch_size: int = 32) -> np.ndarray:
        return model.encode(texts, batch_size=batch_size, normalize_embeddings=True)

    encode(list(sentences[:64]))  # warm-up
    start = time.perf_counter()
    vectors = encode(list(sentences))
    seconds = time.perf_counter() - start
    whole = Run("a", "sentence-transformers encode, batch 32", "fp32", 0, 1, len(sentences),
                count_tokens(sentences), seconds)
    runs = [whole] + _latency_runs("a", "sentence-transformers encode", "fp32", encode,
                                   sentences, count_tokens, samples)
    return runs, np.asarray(vectors, dtype=np.float32)


def embedder_runs(artifact: Path, sentences: Sequence[str],
                  count_tokens: Callable[[Sequence[str]], int],
                  samples: int) -> tuple[list[Run], np.ndarray]:
    """(b): the runtime's Embedder (tokenizer, batcher, ONNX Runtime), no HTTP."""
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder

    # threads=0, as the server runs it: every core of this process's (pinned) affinity.
    embedder = Embedder.load(artifact, RuntimeConfig(backend="onnxruntime", threads=0))
    precision = embedder.artifact.manifest.precision
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(embedder.start())

        def encode(texts: list[str]) -> np.ndarray:
            return loop.run_until_complete(embedder.embed_texts(texts)).vectors

        start = time.perf_counter()
        vectors = encode(list(sentences))
        seconds = time.perf_counter() - start
        whole = Run("b", "Embedder, whole corpus in one call (length-sorted batches)",
                    precision, 0, 1, len(sentences), count_tokens(sentences), seconds)
        seconds = concurrent_callers(embedder, loop, sentences, CALLERS)
        callers = Run("b", f"Embedder, 1 sentence per call, {CALLERS} concurrent callers",
                      precision, 1, CALLERS, len(sentences), count_tokens(sentences), seconds)
        runs = [whole, callers] + _latency_runs("b", "Embedder", precision, encode, sentences,
                                                count_tokens, samples)
    finally:
        loop.run_until_complete(embedder.close())
        loop.close()
    return runs, vectors
