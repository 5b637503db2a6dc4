"""Retrieval-head builds: every SpladePooling variant exports a graph that matches
SparseEncoder (the build's gate passes, and the served weights are SparseEncoder's), and a
bge-m3 whose ColBERT head is not hidden -> hidden is refused before anything is published."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from runtime.artifact.manifest import Manifest
from tests.helpers import build_artifact

TEXTS = ["What is the capital of France?", "a", "The quick brown fox jumps over the lazy dog."]


async def served_sparse(artifact: Path) -> list:
    from runtime.adapters.heads import Output
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder
    from runtime.pipeline.heads import embed_output

    embedder = Embedder.load(artifact, RuntimeConfig())
    await embedder.start()
    try:
        return (await embed_output(embedder, TEXTS, Output.SPARSE)).rows
    finally:
        await embedder.close()


@pytest.mark.parametrize(("pooling", "activation"), [("sum", "relu"), ("max", "log1p_relu")])
def test_splade_pooling_variants_match_sparse_encoder(tmp_path: Path, pooling: str,
                                                      activation: str) -> None:
    from sentence_transformers import SparseEncoder

    from devtools.checkpoints.tiny_sparse import make_tiny_splade

    checkpoint = make_tiny_splade(tmp_path / "ckpt", pooling, activation)
    artifact = build_artifact(checkpoint, tmp_path / "artifact")
    manifest = Manifest.load(artifact)
    assert (manifest.spec.pooling, manifest.spec.sparse_activation) == (pooling, activation)
    assert manifest.verification["min_cosine"] >= manifest.verification["threshold"]
    want = SparseEncoder(str(checkpoint), device="cpu").encode(
        TEXTS, convert_to_tensor=True).to_dense().numpy()
    for row, dense in zip(asyncio.run(served_sparse(artifact)), want):
        np.testing.assert_array_equal(row.indices, np.flatnonzero(dense))
        np.testing.assert_allclose(row.values, dense[row.indices], atol=1e-5, rtol=1e-5)


def test_bge_m3_with_another_colbert_width_is_refused(tmp_path: Path) -> None:
    import torch

    from builder.build import BuildError
    from devtools.checkpoints.tiny_sparse import make_tiny_bge_m3
    from models.spec import UnsupportedModelError

    checkpoint = make_tiny_bge_m3(tmp_path / "ckpt")
    torch.save(torch.nn.Linear(32, 8).state_dict(), checkpoint / "colbert_linear.pt")
    with pytest.raises((UnsupportedModelError, BuildError), match=r"weight \(8, 32\), expected"):
        build_artifact(checkpoint, tmp_path / "artifact")
    assert not (tmp_path / "artifact").exists()
