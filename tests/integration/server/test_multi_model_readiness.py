"""Readiness with several models (in-process server, real ONNX Runtime backends): /ready
stays 503 until every model's warm-up forward pass has run, and a model whose warm-up
fails keeps it 503 with a message naming that model (launch_server then ends the process)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

import httpx
import numpy as np
import pytest

from runtime.artifact import Artifact
from runtime.config import RuntimeConfig
from runtime.pipeline.choose import load_backend
from runtime.pipeline.embedder import Embedder
from server.config import ServerConfig
from tests.helpers import build_artifact
from tests.inprocess import GatedBackend, gated_embedder, serve, wait_for

RUNTIME = RuntimeConfig(threads=1)


@pytest.fixture(scope="module")
def ce_artifact(tmp_path_factory: pytest.TempPathFactory,
                reranker_paths: dict[str, Path]) -> Path:
    return build_artifact(reranker_paths["cross_encoder"], tmp_path_factory.mktemp("ce") / "a")


def two_models(ce: Path, minilm: Path) -> ServerConfig:
    """The reranker first, the embedder second (warm-ups run in launch order)."""
    first, second = (ServerConfig(artifact=Artifact.open(path), model_path=str(path),
                                  served_model_name=name, runtime=RUNTIME)
                     for name, path in (("rerank", ce), ("embed", minilm)))
    return replace(first, more_models=(second,))


class FailingBackend(GatedBackend):
    """The real backend, whose runs fail as a lost device's would."""

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        raise RuntimeError("CUDA error: device lost")


def test_ready_only_when_every_model_has_warmed_up(ce_artifact: Path,
                                                   minilm_artifact: Path) -> None:
    embed, gate = gated_embedder(minilm_artifact, RUNTIME)
    gate.gate.clear()  # the second model's warm-up waits at the gate
    with serve(two_models(ce_artifact, minilm_artifact),
               [Embedder.load(ce_artifact, RUNTIME), embed]) as (url, app):
        assert gate.entered.wait(60)  # the reranker's warm-up ran; the embedder's is held
        r = httpx.get(f"{url}/ready")
        assert r.status_code == 503 and r.json()["error"]["message"] == "The model is warming up."
        gate.gate.set()
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, "ready")


def test_a_failed_warm_up_names_the_model(ce_artifact: Path, minilm_artifact: Path) -> None:
    opened = Artifact.open(minilm_artifact)
    broken = Embedder(opened, RUNTIME,
                      {"text": FailingBackend(load_backend(opened, RUNTIME, "text"))})
    with serve(two_models(ce_artifact, minilm_artifact),
               [Embedder.load(ce_artifact, RUNTIME), broken]) as (url, app):
        wait_for(lambda: app.state.readiness.error is not None, "the warm-up to fail")
        r = httpx.get(f"{url}/ready")
        assert r.status_code == 503
        assert r.json()["error"]["message"] == (
            "Warm-up failed: model 'embed': CUDA error: device lost")
