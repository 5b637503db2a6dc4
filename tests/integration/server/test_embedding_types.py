"""Quantized outputs over HTTP (server/embedding_types.py): every type, in `encoding_format`
and in `embedding_types`, plain and base64, is sentence-transformers' quantize_embeddings
of the server's own float vectors, bit for bit, with the manifest's calibration ranges."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from runtime.artifact import Artifact
from server.config import ServerConfig
from tests.helpers import assert_parity, st_reference
from tests.inprocess import embedding_rows, post_embeddings as post, serve, server_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from sentence_transformers.util.quantization import quantize_embeddings

TEXTS = ["The cat sat on the mat.", "Quantised vectors take a quarter of the bytes.",
         "Ünïcödé façade, naïve café", "A fourth, somewhat longer sentence about storage "
         "costs of embedding indexes in a vector database."]
TYPES = ("float", "int8", "uint8", "binary", "ubinary")
DTYPES = {"float": "<f4", "int8": "i1", "uint8": "u1", "binary": "i1", "ubinary": "u1"}
ST_NAMES = {"float": "float32"}


@pytest.fixture(scope="module")
def url(minilm_artifact: Path) -> Iterator[str]:
    with serve(server_config(minilm_artifact)) as (base, _):
        yield base


def floats(url: str, texts: list[str], **extra: Any) -> np.ndarray:
    return embedding_rows(post(url, input=texts, **extra))


def manifest_ranges(artifact: Path) -> np.ndarray:
    record = json.loads((artifact / "manifest.json").read_text())["calibration"]
    return np.array(record["ranges"], dtype=np.float32)


def reference(vectors: np.ndarray, kind: str, **calibration: Any) -> np.ndarray:
    out = quantize_embeddings(vectors, ST_NAMES.get(kind, kind), **calibration)
    assert isinstance(out, np.ndarray)
    return out


def test_manifest_states_ranges_of_the_calibration_vectors(minilm_artifact: Path) -> None:
    record = json.loads((minilm_artifact / "manifest.json").read_text())["calibration"]
    vectors = np.load(minilm_artifact / record["vectors"])
    assert vectors.shape == (record["texts"], 384) and record["texts"] >= 100
    ranges = manifest_ranges(minilm_artifact)
    assert np.array_equal(ranges, np.vstack([vectors.min(0), vectors.max(0)]))
    assert (ranges[0] < ranges[1]).all()


@pytest.mark.parametrize("kind", TYPES[1:])
def test_encoding_format_type_is_quantize_embeddings(url: str, minilm_artifact: Path,
                                                     kind: str) -> None:
    expected = reference(floats(url, TEXTS), kind, ranges=manifest_ranges(minilm_artifact))
    r = post(url, input=TEXTS, encoding_format=kind)
    assert r.status_code == 200, r.text
    got = np.array([d["embedding"] for d in r.json()["data"]])
    assert got.shape == ((len(TEXTS), 48) if "binary" in kind else (len(TEXTS), 384))
    assert np.array_equal(got, expected.astype(np.int64))
    assert r.json()["usage"]["prompt_tokens"] == post(url, input=TEXTS).json()["usage"][
        "prompt_tokens"]


@pytest.mark.parametrize("b64", [False, True])
def test_embedding_types_answer_each_type_keyed(url: str, minilm_artifact: Path,
                                                b64: bool) -> None:
    vectors = floats(url, TEXTS)
    fmt = "base64" if b64 else "float"
    r = post(url, input=TEXTS, embedding_types=list(TYPES), encoding_format=fmt)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == list(range(len(TEXTS)))
    ranges = manifest_ranges(minilm_artifact)
    for kind in TYPES:
        expected = reference(vectors, kind, ranges=ranges)
        if b64:
            got = np.stack([np.frombuffer(base64.b64decode(d["embedding"][kind]),
                                          DTYPES[kind]) for d in data])
        else:
            got = np.array([d["embedding"][kind] for d in data], dtype=DTYPES[kind])
        assert list(data[0]["embedding"]) == list(TYPES)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), kind


def test_float_matches_the_reference_model(url: str, minilm_path: Path) -> None:
    """The vectors quantized are the model's: the float type against sentence-transformers."""
    r = post(url, input=TEXTS, embedding_types=["float"])
    got = np.array([d["embedding"]["float"] for d in r.json()["data"]], dtype=np.float32)
    assert_parity(got, st_reference(minilm_path, TEXTS))


def test_concurrent_requests_get_their_own_types(url: str, minilm_artifact: Path) -> None:
    """Batches differ under load (padding moves a float's last bit), so each answer carries
    its float vector too: the type is quantize_embeddings of that vector, bit for bit, and
    the vector is its own input's (cosine to that input's answer alone)."""
    ranges = manifest_ranges(minilm_artifact)
    jobs = [([f"request {i}: {t}" for t in TEXTS[: 1 + i % 4]], TYPES[1 + i % 4])
            for i in range(20)]
    alone = [floats(url, texts) for texts, _ in jobs]

    def ask(job: tuple[list[str], str]) -> tuple[np.ndarray, np.ndarray]:
        texts, kind = job
        r = post(url, input=texts, embedding_types=[kind, "float"], encoding_format="base64")
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        return tuple(np.stack([np.frombuffer(base64.b64decode(d["embedding"][k]), DTYPES[k])
                               for d in data]) for k in (kind, "float"))  # type: ignore[return-value]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, jobs))
    for (texts, kind), (got, vectors), own in zip(jobs, answers, alone):
        assert np.array_equal(got, reference(vectors, kind, ranges=ranges)), kind
        assert_parity(vectors, own, 0.99999)


def test_dimensions_apply_before_quantizing(minilm_artifact: Path) -> None:
    """A Matryoshka model's `dimensions`: int8 with the ranges of the truncated, renormalised
    calibration vectors (quantize_embeddings' calibration_embeddings)."""
    opened = Artifact.open(minilm_artifact)
    spec = dataclasses.replace(opened.spec, matryoshka=True)
    base = server_config(minilm_artifact)
    config = ServerConfig(artifact=opened.with_spec(spec), model_path=base.model_path,
                          served_model_name="m", runtime=base.runtime)
    calibration = np.load(minilm_artifact / "calibration.npy")[:, :128]
    calibration = calibration / np.linalg.norm(calibration, axis=1, keepdims=True)
    with serve(config) as (url, _):
        vectors = floats(url, TEXTS, dimensions=128)
        for kind in ("int8", "uint8", "binary"):
            r = post(url, input=TEXTS, dimensions=128, encoding_format=kind)
            assert r.status_code == 200, r.text
            got = np.array([d["embedding"] for d in r.json()["data"]])
            want = reference(vectors, kind, calibration_embeddings=calibration)
            assert np.array_equal(got, want.astype(np.int64)), kind


@pytest.mark.parametrize("body, param", [
    ({"encoding_format": "int8", "embedding_types": ["int8"]}, "encoding_format"),
    ({"embedding_types": []}, "embedding_types"),
    ({"embedding_types": ["int4"]}, "embedding_types"),
    ({"encoding_format": "bits"}, "encoding_format"),
    ({"embedding_types": "int8"}, "embedding_types"),
])
def test_bad_types_are_400(url: str, body: dict[str, Any], param: str) -> None:
    r = post(url, input="hello", **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert set(error) == {"message", "type", "param", "code"}
    assert post(url, input="still healthy").status_code == 200


def test_uncalibrated_artifact_int8_is_400_saying_rebuild(minilm_artifact: Path,
                                                          tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(minilm_artifact, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["calibration"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    (old / "calibration.npy").unlink()
    with serve(server_config(old)) as (url, _):
        for body in ({"encoding_format": "uint8"}, {"embedding_types": ["float", "int8"]}):
            r = post(url, input=TEXTS, **body)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "not_calibrated"
            assert "rebuild" in r.json()["error"]["message"]
        vectors = floats(url, TEXTS)
        r = post(url, input=TEXTS, encoding_format="ubinary")
        assert r.status_code == 200
        assert np.array_equal(np.array([d["embedding"] for d in r.json()["data"]]),
                              reference(vectors, "ubinary"))
