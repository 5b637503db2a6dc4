"""An XLM-R cross-encoder (bge-reranker's architecture: no token types, positions offset
by the padding index) builds past the pair gate and serves CrossEncoder's scores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from runtime.config import RuntimeConfig
from runtime.pipeline.embedder import Embedder
from runtime.artifact.manifest import Manifest
from devtools.checkpoints.tiny_cross_encoder import MAX_LEN, make_tiny_cross_encoder
from tests.helpers import build_artifact

QUERY = "what is the capital of france?"
DOCS = ["the quick brown fox", "a cup of coffee and a rocket", "long " * 80]


async def served(artifact: Path) -> np.ndarray:
    embedder = Embedder.load(artifact, RuntimeConfig())
    await embedder.start()
    try:
        return (await embedder.rerank(QUERY, DOCS)).scores
    finally:
        await embedder.close()


def test_xlm_roberta_cross_encoder(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    checkpoint = make_tiny_cross_encoder(tmp_path / "xlmr", xlm_roberta=True)
    artifact = build_artifact(checkpoint, tmp_path / "artifact")
    manifest = Manifest.load(artifact)
    assert manifest.spec.inputs == ("input_ids", "attention_mask")
    assert manifest.spec.max_len == MAX_LEN and manifest.spec.width == 32
    assert manifest.verification["max_abs_diff"] <= 1e-4
    reference = CrossEncoder(str(checkpoint), device="cpu").predict([(QUERY, d) for d in DOCS])
    np.testing.assert_allclose(asyncio.run(served(artifact)), reference, atol=1e-4, rtol=0)
    assert np.ptp(reference) > 0.01  # the tiny model tells documents apart
