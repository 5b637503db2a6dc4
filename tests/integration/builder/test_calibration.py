"""The builder's int8/uint8 calibration (builder/calibration.py): the manifest states each
dimension's min and max over the served graph's vectors of the bundled corpus, whichever
way the gate ran the graph (bf16: the exported module in torch); rerankers get none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from builder.calibration import corpus
from tests.helpers import assert_parity, build_artifact, st_reference


def calibration(artifact: Path) -> dict:
    return json.loads((artifact / "manifest.json").read_text())["calibration"]


def test_bf16_calibrates_through_torch(tmp_path: Path, minilm_path: Path) -> None:
    from devtools.checkpoints.tiny_bert import tiny_bert

    checkpoint = tiny_bert(tmp_path / "bert", minilm_path, normalize=True)
    artifact = build_artifact(checkpoint, tmp_path / "bf16", precision="bf16")
    record = calibration(artifact)
    vectors = np.load(artifact / record["vectors"])
    assert vectors.shape[0] == record["texts"] == len(corpus())
    assert np.array_equal(np.array(record["ranges"], np.float32),
                          np.vstack([vectors.min(0), vectors.max(0)]))
    # bf16 vectors of the corpus, near the float32 reference's (the gate's tolerance).
    assert_parity(vectors, st_reference(checkpoint, corpus()), 0.99)


def test_rerankers_are_not_calibrated(tmp_path: Path) -> None:
    from devtools.checkpoints.tiny_cross_encoder import make_tiny_cross_encoder

    artifact = build_artifact(make_tiny_cross_encoder(tmp_path / "ce"), tmp_path / "art")
    assert calibration(artifact) is None and not (artifact / "calibration.npy").exists()


@pytest.mark.parametrize("name", ["qwen3"])
def test_decoders_calibrate_their_last_token_vectors(tmp_path: Path, name: str) -> None:
    from devtools.checkpoints.tiny_decoders import st_model, tiny_decoder

    checkpoint = tiny_decoder(name, tmp_path / "ckpt")
    artifact = build_artifact(checkpoint, tmp_path / "art")
    vectors = np.load(artifact / calibration(artifact)["vectors"])
    assert_parity(vectors, st_model(name, checkpoint).encode(corpus()), 0.9999)
