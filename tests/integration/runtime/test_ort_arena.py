"""ONNX Runtime's CPU arena after a long batch: it keeps, for the session's life, the most
memory one run took unless the run asks it to shrink (runtime/backends/ort.py). Measured on
the tiny Qwen3 graph (4 heads) with 4 rows of 3072 tokens: eager attention's scores make
that run take ~1.7 GiB; afterwards the process holds it only when the arena kept it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from runtime.backends import ort as ort_backend
from runtime.backends.base import BackendLimits
from runtime.artifact.manifest import Manifest

MIB = 1 << 20


def resident() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def feeds(rows: int, seq: int) -> dict[str, np.ndarray]:
    ones = np.ones((rows, seq), np.int64)
    return {"input_ids": ones, "attention_mask": ones}


def held_after_long_batch(onnx: Path) -> float:
    """MiB the process holds after a long batch, over what it held after a short one."""
    backend = ort_backend.OnnxRuntimeBackend(onnx, BackendLimits(64, 8192), threads=1)
    backend.embed(feeds(4, 64))
    before = resident()
    backend.embed(feeds(4, 3072))
    backend.embed(feeds(4, 64))
    held = resident() - before
    backend.close()
    return held


def test_long_batches_hand_their_memory_back(tiny_decoder_artifacts: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = tiny_decoder_artifacts["qwen3"]
    onnx = artifact / Manifest.load(artifact).graphs["text"].onnx
    backend = ort_backend.OnnxRuntimeBackend(onnx, BackendLimits(64, 8192), threads=1)
    assert backend.run_options((64, 512)) is None  # the arena keeps what a batch like it needs
    assert backend.run_options((4, 3072)) is not None
    shrunk = held_after_long_batch(onnx)
    monkeypatch.setattr(ort_backend, "ARENA_KEEP_CELLS", 1 << 62)  # never shrink: as before
    kept = held_after_long_batch(onnx)
    assert kept > 1000 and shrunk < 100, (kept, shrunk)
