"""Interleaved rounds for the throughput targets: (a), (b) and the servers, taken in turn.

On a shared machine (a VM here) the CPU's speed drifts by ±10% over minutes, more than some
of the differences the targets are about. So the target ratios are not taken from runs
minutes apart: each round measures (a), (b) and the servers at concurrency 16 back to back,
a ratio is taken within each round, and the report gives the median over rounds.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from bench.http_load import load_run
from bench.local import concurrent_callers
from bench.stats import Run
from devtools.helpers import running_server

CONCURRENCY = 16
LATENCY_CALLS = 100  # one-sentence calls per round for the single-request latency target


def interleaved_runs(checkpoint: Path, threads: int, artifacts: dict[str, Path],
                     sentences: Sequence[str], count_tokens: Callable[[Sequence[str]], int],
                     rounds: int) -> list[Run]:
    """`rounds` x [(a) whole corpus, (b) fp32 whole corpus and 16 one-sentence callers, (b)
    and the fp32 server one sentence at a time, then for each artifact the server at
    concurrency 16 with 1- and 32-sentence requests], as Runs tagged by round."""
    import torch
    from sentence_transformers import SentenceTransformer

    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(checkpoint), device="cpu")
    tokens = count_tokens(sentences)
    loop = asyncio.new_event_loop()
    embedder = Embedder.load(artifacts["fp32"], RuntimeConfig(backend="onnxruntime"))
    runs: list[Run] = []
    with ExitStack() as stack:
        urls = {p: stack.enter_context(running_server(a, "--log-level", "warning"))
                for p, a in artifacts.items()}
        loop.run_until_complete(embedder.start())
        stack.callback(loop.close)
        stack.callback(lambda: loop.run_until_complete(embedder.close()))
        for n in range(1, rounds + 1):
            start = time.perf_counter()
            model.encode(list(sentences), batch_size=32, normalize_embeddings=True)
            runs.append(Run("a", "sentence-transformers encode, batch 32", "fp32", 0, 1,
                            len(sentences), tokens, time.perf_counter() - start, round=n))
            start = time.perf_counter()
            loop.run_until_complete(embedder.embed_texts(list(sentences)))
            runs.append(Run("b", "Embedder, whole corpus in one call", "fp32", 0, 1,
                            len(sentences), tokens, time.perf_counter() - start, round=n))
            seconds = concurrent_callers(embedder, loop, sentences, CONCURRENCY)
            runs.append(Run("b", f"Embedder, 1 sentence per call, {CONCURRENCY} concurrent "
                            "callers", "fp32", 1, CONCURRENCY, len(sentences), tokens, seconds,
                            round=n))
            runs += latency_pair(embedder, loop, urls["fp32"], sentences, count_tokens, n)
            for precision, url in urls.items():
                runs += [replace(load_run(url, precision, sentences, size, CONCURRENCY,
                                          None, count_tokens)[0], round=n)
                         for size in (1, 32)]
    return runs


def latency_pair(embedder, loop: asyncio.AbstractEventLoop, url: str,  # type: ignore[no-untyped-def]
                 sentences: Sequence[str], count_tokens: Callable[[Sequence[str]], int],
                 round_: int) -> list[Run]:
    """The same one-sentence calls, one at a time, to (b) and to the server: back to back,
    so that their p50s are compared at the same CPU speed."""
    calls = list(sentences[:LATENCY_CALLS])
    latencies = []
    for text in calls:
        start = time.perf_counter()
        loop.run_until_complete(embedder.embed_texts([text]))
        latencies.append(time.perf_counter() - start)
    b = Run("b", "Embedder, 1 sentence per call", "fp32", 1, 1, len(calls),
            count_tokens(calls), sum(latencies), tuple(latencies), round=round_)
    c = load_run(url, "fp32", calls, 1, 1, None, count_tokens)[0]
    return [b, replace(c, round=round_)]
