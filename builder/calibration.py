"""int8/uint8 calibration: the built graph embeds a bundled corpus; each dimension's min and
max over those vectors go into the manifest (`calibration.ranges`), the vectors beside it
(runtime/quantization.py reads both).

The corpus (builder/data/calibration.txt, 123 sentences written for this: news, questions,
instructions, code talk, a few other languages) ships in the package, so a build needs no
internet. The vectors are the served graph's, run as the parity gate ran it (ONNX Runtime,
or the exported module in torch where ONNX Runtime's CPU kernels cannot run the precision).
Families that take images or score pairs are not calibrated: their int8/uint8 is a 400.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from builder import verify
from models.family import Family
from models.spec import ModelSpec
from runtime.quantization import CALIBRATION_FILE, calibrates, calibration_ranges

CORPUS = Path(__file__).parent / "data" / "calibration.txt"
BATCH = 16  # texts per run: bounds the padded batch of a long-context model


def corpus() -> list[str]:
    return [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def calibrate(family: Family, checkpoint: str | Path, spec: ModelSpec, artifact: Path,
              precision: str, method: str) -> dict[str, Any] | None:
    """The manifest's calibration record (the vectors saved into `artifact`); None for
    families without one."""
    if not calibrates(spec):
        return None
    texts = corpus()
    groups = [texts[start:start + BATCH] for start in range(0, len(texts), BATCH)]
    if method == "onnxruntime":
        parts = _run_onnx(artifact, groups)
    else:  # one call: each loads the module (the corpus is short sentences, one batch)
        parts = [verify.run_export_module(family, checkpoint, spec, artifact, texts, precision)]
    vectors = np.concatenate(parts).astype(np.float32)
    np.save(artifact / CALIBRATION_FILE, vectors)
    return {"corpus": CORPUS.name, "sha256": hashlib.sha256(CORPUS.read_bytes()).hexdigest(),
            "texts": len(texts), "vectors": CALIBRATION_FILE,
            "ranges": calibration_ranges(vectors).tolist()}


def _run_onnx(artifact: Path, groups: list[list[str]]) -> list[np.ndarray]:
    """Each group of texts through the artifact's text graph on ONNX Runtime (one session)."""
    from runtime.artifact.manifest import Manifest
    from runtime.backends.base import BackendLimits
    from runtime.backends.ort import OnnxRuntimeBackend

    manifest = Manifest.load(artifact)
    backend = OnnxRuntimeBackend(artifact / manifest.graphs["text"].onnx,
                                 BackendLimits(BATCH, manifest.spec.max_len))
    try:
        return [backend.embed(verify.probe_feeds(artifact, group)) for group in groups]
    finally:
        backend.close()
