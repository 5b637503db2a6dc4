"""Quantized embedding outputs: float, int8, uint8, binary, ubinary, as sentence-transformers'
`quantize_embeddings` defines them (and Cohere's embed API names them).

- int8 / uint8: per dimension, [min, max] of the model's calibration vectors is cut into 256
  buckets, `floor((x - min) / step)` clipped to 0..255 (uint8), minus 128 (int8). The builder
  embeds a bundled calibration corpus (builder/calibration.py) and states each dimension's
  min and max in the manifest (`calibration.ranges`); it also keeps the vectors
  (`calibration.npy`), so a Matryoshka `dimensions` request gets the ranges of the truncated,
  renormalised calibration vectors, as quantize_embeddings(calibration_embeddings=...) would.
- binary / ubinary: the sign bits (x > 0) packed 8 dimensions per byte, big-endian bit order
  (numpy packbits); ubinary is the byte, binary the byte minus 128 as int8.

Pure numpy: the server and the bulk command import this; the builder writes what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models.spec import ModelSpec
from runtime.errors import InvalidRequestError

FLOAT = "float"
TYPES = (FLOAT, "int8", "uint8", "binary", "ubinary")
CALIBRATED = ("int8", "uint8")  # the types that need the manifest's ranges
CALIBRATION_FILE = "calibration.npy"


def calibrates(spec: ModelSpec) -> bool:
    """Whether a build calibrates int8/uint8 for this model: text embedders only (images and
    rerankers' scores have no calibration corpus here)."""
    return spec.vision is None and not spec.is_reranker


def quantize(vectors: np.ndarray, kind: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """(n, dims) float32 -> `kind`'s array: float32 (n, dims), int8/uint8 (n, dims),
    binary/ubinary (n, ceil(dims / 8)); `ranges` (2, dims) for int8 and uint8."""
    if kind == FLOAT:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    if kind in CALIBRATED:
        if ranges is None:
            raise ValueError(f"{kind} needs per-dimension ranges")
        starts = ranges[0].astype(np.float32)
        steps = (ranges[1].astype(np.float32) - starts) / 255
        steps = np.where(steps == 0, 1, steps)  # a constant dimension: one bucket
        buckets = np.clip(np.floor((vectors - starts) / steps), 0, 255)
        return (buckets.astype(np.uint8) if kind == "uint8"
                else (buckets - 128).astype(np.int8))
    if kind == "ubinary":
        return np.packbits(vectors > 0, axis=-1)
    if kind == "binary":
        return (np.packbits(vectors > 0, axis=-1).astype(np.int16) - 128).astype(np.int8)
    raise ValueError(f"unknown embedding type {kind!r}; one of {', '.join(TYPES)}")


def calibration_ranges(vectors: np.ndarray) -> np.ndarray:
    """(2, dims): each dimension's min and max over the calibration vectors."""
    return np.stack([vectors.min(axis=0), vectors.max(axis=0)]).astype(np.float32)


def truncated(vectors: np.ndarray, dims: int) -> np.ndarray:
    """Matryoshka: the first `dims` dimensions, renormalised (as the pipeline answers)."""
    cut = vectors[:, :dims]
    return cut / np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)


@dataclass
class Quantizer:
    """One artifact's quantization: its stated ranges, and per Matryoshka size those of its
    truncated calibration vectors (computed once per size, on first use)."""

    directory: Path
    record: dict[str, Any] | None  # the manifest's `calibration`, None: built before it
    rebuild_helps: bool = True  # False: the family is never calibrated (calibrates())
    _by_dims: dict[int, np.ndarray] = field(default_factory=dict)

    def check(self, kinds: Sequence[str], param: str) -> None:
        """400 before any work when int8/uint8 is asked of an artifact with no ranges."""
        wanted = [k for k in kinds if k in CALIBRATED]
        if wanted and self.record is None and not self.rebuild_helps:
            raise InvalidRequestError(
                f"{wanted[0]} embeddings need per-dimension ranges calibrated on text, and "
                "this model (images, or a reranker) has none; float, binary and ubinary "
                "work.", param=param, code="not_calibrated")
        if wanted and self.record is None:
            raise InvalidRequestError(
                f"{wanted[0]} embeddings need the per-dimension ranges a build calibrates, "
                "and this artifact was built without them: rebuild it (python -m builder "
                "... --force, or the server's --force-build). float, binary and ubinary "
                "work as it is.", param=param, code="not_calibrated")

    def ranges(self, dims: int) -> np.ndarray:
        assert self.record is not None  # check() ran first
        full = np.asarray(self.record["ranges"], dtype=np.float32)
        if dims == full.shape[1]:
            return full
        if dims not in self._by_dims:
            vectors = np.load(self.directory / self.record["vectors"])
            self._by_dims[dims] = calibration_ranges(truncated(vectors, dims))
        return self._by_dims[dims]

    def apply(self, vectors: np.ndarray, kind: str) -> np.ndarray:
        ranges = self.ranges(vectors.shape[1]) if kind in CALIBRATED else None
        return quantize(vectors, kind, ranges)
