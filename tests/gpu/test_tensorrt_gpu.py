"""TensorRT on a real GPU: engine build, parity against ONNX Runtime, concurrent streams.

Skipped cleanly where TensorRT, cuda-python or a GPU is missing (every CI machine here).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pytest

from runtime.pipeline.choose import tensorrt_missing

if TYPE_CHECKING:
    from runtime.backends.ort import OnnxRuntimeBackend
    from runtime.backends.trt import TensorRtBackend
    from runtime.artifact.manifest import Manifest

    Backends = tuple[Manifest, TensorRtBackend, OnnxRuntimeBackend]

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(bool(tensorrt_missing()),
                                 reason="needs TensorRT, cuda-python and a GPU: "
                                        + "; ".join(tensorrt_missing()))]

TEXTS = ["What is the capital of France?", "a", "TensorRT engines run on CUDA streams. " * 20,
         "Embeddings map text to vectors.", "long " * 300]


@pytest.fixture(scope="module")
def trt_artifact(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    from tests.helpers import build_artifact

    return build_artifact(minilm_path, tmp_path_factory.mktemp("trt") / "minilm",
                          backend="tensorrt", precision="fp16")


@pytest.fixture(scope="module")
def backends(trt_artifact: Path) -> Iterator[Backends]:
    from runtime.artifact import Artifact
    from runtime.backends.base import BackendLimits
    from runtime.backends.ort import OnnxRuntimeBackend
    from runtime.backends.trt import TensorRtBackend

    artifact = Artifact.open(trt_artifact)
    manifest = artifact.manifest
    trt = TensorRtBackend(artifact, "text", contexts=3)
    ort = OnnxRuntimeBackend(artifact.onnx_path("text"), BackendLimits(64, manifest.spec.max_len))
    yield manifest, trt, ort
    trt.close()


def feeds(artifact: Path, texts: list[str]) -> dict[str, np.ndarray]:
    from builder.verify import probe_feeds

    return probe_feeds(artifact, texts)


def test_plan_recorded(trt_artifact: Path) -> None:
    record = json.loads((trt_artifact / "manifest.json").read_text())["tensorrt"]
    plan = record["plans"]["text"]
    assert record["flavour"] == "tensorrt" and (trt_artifact / plan["file"]).stat().st_size > 0
    assert Path(record["timing_cache"]).stat().st_size > 0
    assert record["precision"] == "fp16" and record["compute_capabilities"]
    assert [p["name"] for p in plan["profiles"]] == ["seq128", "seq256"]  # MiniLM: 256 tokens


def test_parity_with_onnxruntime_per_profile(trt_artifact: Path, backends: Backends) -> None:
    from tests.helpers import assert_parity

    manifest, trt, ort = backends
    assert trt.limits.seq_buckets == (128, manifest.spec.max_len)
    for texts in (TEXTS[:2], TEXTS):  # short profile only, then the long profile
        batch = feeds(trt_artifact, texts)
        assert_parity(trt.embed(batch), ort.embed(batch), min_cosine=0.999)


def test_concurrent_streams_match_serial(trt_artifact: Path, backends: Backends) -> None:
    _, trt, _ = backends
    batches = [feeds(trt_artifact, [t] * (i + 1)) for i, t in enumerate(TEXTS * 4)]
    serial = [trt.embed(b) for b in batches]
    with ThreadPoolExecutor(3) as pool:
        parallel = list(pool.map(trt.embed, batches))
    for a, b in zip(serial, parallel):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_split_over_profile_max_batch(trt_artifact: Path, backends: Backends) -> None:
    _, trt, ort = backends
    big = feeds(trt_artifact, [TEXTS[4]] * (trt.profiles[-1].max_batch + 3))
    np.testing.assert_allclose(trt.embed(big), ort.embed(big), atol=2e-2)
