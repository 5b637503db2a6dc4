"""CPU batches sized to the model: one-thread ONNX Runtime batches get a padded-token budget
from the model's width, an explicit --max-batch-tokens wins, and the vectors stay exact."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

from runtime.settings import DEFAULT_BATCH_TOKENS
from runtime.pipeline.limits import BatchFlags
from runtime.config import RuntimeConfig
from runtime.pipeline.embedder import Embedder
from runtime.backends.ort import one_thread_batch_tokens
from tests.helpers import cosine_rows, st_reference

multi_core = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                                reason="one-thread batches run only with several cores")


def test_budget_scales_inversely_with_width() -> None:
    assert one_thread_batch_tokens(384) == 512  # all-MiniLM: measured best at 384-1024
    assert one_thread_batch_tokens(768) == 256  # BERT-base shape: measured best at 256
    assert one_thread_batch_tokens(1024) == 192
    assert one_thread_batch_tokens(8192) == 64  # a floor: rows still share a call
    assert one_thread_batch_tokens(0) == 0  # width unknown: no preference


def budget(artifact: Path, config: RuntimeConfig) -> int | None:
    embedder = Embedder.load(artifact, config)
    try:
        return embedder.batcher.cfg.max_batch_tokens
    finally:
        embedder.backend.close()


@multi_core
def test_default_budget_comes_from_the_backend(minilm_artifact: Path) -> None:
    assert budget(minilm_artifact, RuntimeConfig(backend="onnxruntime")) == 512
    explicit = RuntimeConfig(backend="onnxruntime", batch=BatchFlags(max_batch_tokens=4096))
    assert budget(minilm_artifact, explicit) == 4096
    # One N-thread session: no one-thread batches, the general default.
    threaded = RuntimeConfig(backend="onnxruntime", threads=2)
    assert budget(minilm_artifact, threaded) == DEFAULT_BATCH_TOKENS
    # One one-thread session (--threads 1, the bulk command's): one-thread batches again.
    assert budget(minilm_artifact, RuntimeConfig(backend="onnxruntime", threads=1)) == 512


@multi_core
def test_many_rows_run_in_budget_sized_batches_with_exact_vectors(minilm_artifact: Path,
                                                                   minilm_path: Path) -> None:
    texts = [f"Sentence number {i} is about {'rain ' * (i % 9)}in the mountains." for i in range(150)]
    padded: list[tuple[int, int]] = []

    async def run() -> np.ndarray:
        embedder = Embedder.load(minilm_artifact, RuntimeConfig(backend="onnxruntime"))
        await embedder.start()
        embedder.batcher.on_batch = lambda rows, tokens, _s: padded.append((rows, tokens))
        try:
            return (await embedder.embed_texts(texts)).vectors
        finally:
            await embedder.close()

    vectors = asyncio.run(run())
    assert sum(rows for rows, _ in padded) == len(texts)
    assert len(padded) > 1 and all(tokens <= 512 for rows, tokens in padded if rows > 1)
    assert cosine_rows(vectors, st_reference(minilm_path, texts)).min() > 0.9999
