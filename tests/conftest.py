"""Session fixtures: the real default model built once, and one real server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import build_artifact, minilm_checkpoint, running_server


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    return minilm_checkpoint()


@pytest.fixture(scope="session")
def minilm_artifact(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    return build_artifact(minilm_path, tmp_path_factory.mktemp("artifacts") / "minilm")


@pytest.fixture(scope="session")
def minilm_server(minilm_artifact: Path) -> Iterator[str]:
    """A server on the built artifact, as `make serve` runs it; yields its base URL."""
    with running_server(minilm_artifact) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_decoder_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random Qwen3-Embedding / gte-Qwen2 / E5-Mistral checkpoints, by family name."""
    from tests.fixtures.tiny_decoders import KINDS, tiny_decoder

    root = tmp_path_factory.mktemp("tiny_decoders")
    return {name: tiny_decoder(name, root / name) for name in KINDS}


@pytest.fixture(scope="session")
def tiny_decoder_artifacts(tmp_path_factory: pytest.TempPathFactory,
                           tiny_decoder_paths: dict[str, Path]) -> dict[str, Path]:
    """Built artifacts of the tiny decoders; E5-Mistral's with ONNX external data forced,
    so the external-data path is built, verified and served as well."""
    root = tmp_path_factory.mktemp("decoder_artifacts")
    return {name: build_artifact(path, root / name, external_data=(name == "e5_mistral"))
            for name, path in tiny_decoder_paths.items()}


@pytest.fixture(scope="session")
def tiny_multimodal_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random CLIP and GME (Qwen2-VL) checkpoints, by family name."""
    from tests.fixtures.tiny_multimodal import make_tiny_clip, make_tiny_qwen2_vl

    root = tmp_path_factory.mktemp("tiny_multimodal")
    return {"clip": make_tiny_clip(root / "clip"), "gme": make_tiny_qwen2_vl(root / "gme")}
