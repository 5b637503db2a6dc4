"""The startup measurement of a backend's call cost, on a backend that keeps its own time:
what it fits, which shapes it probes, and when the pipeline runs it."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pytest

from runtime.pipeline import calibrate
from runtime.backends.base import BackendLimits
from runtime.pipeline.batcher import BatchConfig


class TimedBackend:
    """A backend whose calls take `fixed` + `per_token` x padded tokens of a fake clock."""

    name = "timed"

    def __init__(self, fixed: float, per_token: float, call_cost_tokens: int = 0):
        self.now = 0.0
        self.fixed, self.per_token = fixed, per_token
        self.limits = BackendLimits(64, 512, call_cost_tokens=call_cost_tokens)
        self.shapes: list[tuple[int, int]] = []

    def clock(self) -> float:
        return self.now

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        ids = feeds["input_ids"]
        self.shapes.append(ids.shape)
        self.now += self.fixed + ids.size * self.per_token
        return np.zeros((ids.shape[0], 384), dtype=np.float32)

    def close(self) -> None:
        pass


def test_the_fitted_cost_is_fixed_over_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = TimedBackend(fixed=2.64e-3, per_token=0.68e-6)
    monkeypatch.setattr(calibrate, "clock", backend.clock)

    def run(rows: Sequence[Sequence[int]]) -> np.ndarray:
        from runtime.backends.base import pad_batch
        ids, mask = pad_batch(rows)
        return backend.embed({"input_ids": ids, "attention_mask": mask})

    cost = calibrate.measure_call_cost(run, lambda n: [0] * n, BatchConfig(
        max_batch_tokens=16384, max_batch_size=256), max_len=512)
    assert cost == round(2.64e-3 / 0.68e-6)
    # one row, half and a whole batch of 32-token rows, the largest first (allocation)
    assert backend.shapes[0] == (256, 32)
    assert {s for s in backend.shapes} == {(1, 32), (128, 32), (256, 32)}


def test_probe_sizes_keep_within_the_limits() -> None:
    assert calibrate.probe_sizes(BatchConfig(max_batch_tokens=16384, max_batch_size=64), 32) \
        == (1, 32, 64)
    assert calibrate.probe_sizes(BatchConfig(max_batch_tokens=256, max_batch_size=64), 32) \
        == (1, 4, 8)
    assert calibrate.probe_sizes(BatchConfig(max_batch_tokens=32, max_batch_size=64), 32) \
        == (1, 2)
