"""runtime/quantization.py against sentence-transformers' quantize_embeddings, bit for bit,
on shapes the models give (dims not a multiple of 8, a constant dimension, values beyond
the calibration range)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import InvalidRequestError
from runtime.quantization import Quantizer, calibration_ranges, quantize, truncated

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from sentence_transformers.util.quantization import quantize_embeddings


def vectors(rows: int, dims: int, seed: int) -> np.ndarray:
    out = np.random.default_rng(seed).normal(size=(rows, dims)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("dims", [384, 100, 7])
@pytest.mark.parametrize("kind", ["int8", "uint8", "binary", "ubinary"])
def test_quantize_is_quantize_embeddings(kind: str, dims: int) -> None:
    calibration = vectors(200, dims, 0)
    calibration[:, 1] = 0.25  # a constant dimension: a zero step
    x = vectors(50, dims, 1) * 1.5  # some values past the calibrated range (clipped)
    ranges = calibration_ranges(calibration)
    want = quantize_embeddings(x, kind, ranges=ranges)
    got = quantize(x, kind, ranges)
    assert isinstance(want, np.ndarray)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(got, quantize_embeddings(x, kind, calibration_embeddings=calibration))


def test_float_is_float32() -> None:
    x = vectors(3, 16, 2)
    assert np.array_equal(quantize(x, "float"), quantize_embeddings(x, "float32"))


def test_quantizer_ranges_per_matryoshka_size(tmp_path: Path) -> None:
    calibration = vectors(120, 64, 3)
    np.save(tmp_path / "calibration.npy", calibration)
    record = {"vectors": "calibration.npy", "ranges": calibration_ranges(calibration).tolist()}
    quantizer = Quantizer(tmp_path, record)
    x = truncated(vectors(10, 64, 4), 16)
    want = quantize_embeddings(x, "int8", calibration_embeddings=truncated(calibration, 16))
    assert np.array_equal(quantizer.apply(x, "int8"), want)
    full = vectors(10, 64, 5)
    assert np.array_equal(quantizer.apply(full, "uint8"),
                          quantize_embeddings(full, "uint8", calibration_embeddings=calibration))


def test_uncalibrated_quantizer_refuses_int8_only(tmp_path: Path) -> None:
    quantizer = Quantizer(tmp_path, None)
    quantizer.check(["float", "binary", "ubinary"], "encoding_format")
    with pytest.raises(InvalidRequestError) as caught:
        quantizer.check(["binary", "uint8"], "embedding_types")
    assert caught.value.param == "embedding_types" and caught.value.code == "not_calibrated"


def test_a_family_never_calibrated_is_not_told_to_rebuild(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Quantizer(tmp_path, None, rebuild_helps=False).check(["int8"], "encoding_format")
    assert caught.value.code == "not_calibrated" and "rebuild" not in caught.value.message
