"""The pipeline measures a backend's call cost at startup only where nobody said it: not
with --call-cost-tokens, not when the backend knows its own (ONNX Runtime on CPU)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.pipeline import calibrate
from runtime.artifact import Artifact
from runtime.config import RuntimeConfig
from runtime.pipeline.embedder import Embedder
from runtime.pipeline.limits import PROVISIONAL_CALL_COST, BatchFlags
from tests.unit.runtime.test_calibrate import TimedBackend


@pytest.mark.parametrize("flag, known, want", [
    (None, 0, round(1e-3 / 1e-6)),  # a GPU-like backend: measured at startup
    (None, 8, 8),  # the backend knows its figure (ONNX Runtime on CPU)
    (40, 0, 40),  # --call-cost-tokens wins, nothing measured
])
def test_the_pipeline_measures_only_what_nobody_said(
        minilm_artifact: Path, monkeypatch: pytest.MonkeyPatch, flag: int | None, known: int,
        want: int) -> None:
    backend = TimedBackend(fixed=1e-3, per_token=1e-6, call_cost_tokens=known)
    monkeypatch.setattr(calibrate, "clock", backend.clock)
    config = RuntimeConfig(batch=BatchFlags(call_cost_tokens=flag))

    async def started() -> int:
        embedder = Embedder(Artifact.open(minilm_artifact), config, {"text": backend})
        before = embedder.batcher.cfg.call_cost_tokens
        await embedder.start()
        after = embedder.batcher.cfg.call_cost_tokens
        await embedder.close()
        assert before == (flag if flag is not None else known or PROVISIONAL_CALL_COST)
        return after

    assert asyncio.run(started()) == want
    probed = [s for s in backend.shapes if s[1] == calibrate.PROBE_WIDTH]
    assert bool(probed) == (want == round(1e-3 / 1e-6) and flag is None and not known)
