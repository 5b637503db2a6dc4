"""`--precision int8`: MiniLM passes its own quality gate and serves close to the reference;
an artifact whose quantised weights were doctored is refused and nothing is published."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from builder import quantize
from builder.build import BuildError
from runtime.config import RuntimeConfig
from runtime.pipeline.embedder import Embedder
from runtime.artifact.manifest import Manifest
from tests.helpers import build_artifact, cosine_rows, st_reference

TEXTS = ["The storm moved east across the Blue Mountains.", "What is the capital of France?",
         "Shares fell sharply after the bank raised interest rates again."]


@pytest.fixture(scope="module")
def int8_artifact(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    return build_artifact(minilm_path, tmp_path_factory.mktemp("int8") / "minilm-int8",
                          precision="int8")


def test_int8_passes_its_gate_and_records_it(int8_artifact: Path) -> None:
    manifest = Manifest.load(int8_artifact)
    assert manifest.precision == "int8"
    assert manifest.graphs["text"].onnx == "model.int8.onnx"
    assert not (int8_artifact / "model.onnx").exists()  # the fp32 graph is not shipped
    check = manifest.verification
    assert (check["threshold"], check["mean_threshold"]) == (0.97, 0.99)
    assert check["min_cosine"] >= 0.97 and check["mean_cosine"] >= 0.99
    assert check["mean_cosine"] < 0.9999  # really quantised: not the fp32 graph


def test_int8_serves_vectors_close_to_sentence_transformers(int8_artifact: Path,
                                                            minilm_path: Path) -> None:
    async def embed() -> np.ndarray:
        embedder = Embedder.load(int8_artifact, RuntimeConfig(backend="onnxruntime"))
        await embedder.start()
        try:
            return (await embedder.embed_texts(TEXTS)).vectors
        finally:
            await embedder.close()

    cos = cosine_rows(asyncio.run(embed()), st_reference(minilm_path, TEXTS))
    assert cos.min() >= 0.97 and cos.mean() >= 0.98, cos


_REAL_QUANTIZE = quantize.quantize_int8


def _doctored(fp32_path: Path) -> Path:
    """The real quantiser, then every weight scale scrambled by up to +-60%."""
    import onnx
    from onnx import numpy_helper

    path = _REAL_QUANTIZE(fp32_path)
    model = onnx.load(str(path))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        if init.name.endswith("_scale") and init.dims:  # per-channel weight scales
            scale = numpy_helper.to_array(init)
            scrambled = scale * rng.uniform(0.4, 1.6, scale.shape).astype(scale.dtype)
            init.CopyFrom(numpy_helper.from_array(scrambled, init.name))
    onnx.save(model, str(path))
    return path


def test_int8_gate_refuses_a_doctored_artifact(tmp_path: Path, minilm_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantize, "quantize_int8", _doctored)
    output = tmp_path / "doctored"
    with pytest.raises(BuildError, match="int8 quality gate failed"):
        build_artifact(minilm_path, output, precision="int8")
    assert not output.exists()
    assert not any(tmp_path.iterdir())  # the staging dir is gone too
