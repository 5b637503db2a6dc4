"""Session fixtures: the real default model and the tiny checkpoints of every family, each\nbuilt once, and their real servers on loopback (shared by behaviour and parity tests)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

from tests.helpers import build_artifact, minilm_checkpoint, running_server

if TYPE_CHECKING:
    from tests.fixtures.decoder_server import Served


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
    from devtools.checkpoints.tiny_decoders import KINDS, tiny_decoder

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
    from devtools.checkpoints.tiny_multimodal import make_tiny_clip, make_tiny_qwen2_vl

    root = tmp_path_factory.mktemp("tiny_multimodal")
    return {"clip": make_tiny_clip(root / "clip"), "gme": make_tiny_qwen2_vl(root / "gme")}


@pytest.fixture(scope="session")
def decoder_servers(tiny_decoder_paths: dict[str, Path],
                    tiny_decoder_artifacts: dict[str, Path]) -> Iterator[Callable[[str], Served]]:
    """A server per decoder family, started on first use and kept for the session: the
    behaviour tests and each family's parity file share it."""
    from tests.fixtures.decoder_server import serve_decoder

    servers: dict[str, Served] = {}
    with contextlib.ExitStack() as stack:
        def get(name: str) -> Served:
            if name not in servers:
                servers[name] = stack.enter_context(
                    serve_decoder(name, tiny_decoder_paths[name], tiny_decoder_artifacts[name]))
            return servers[name]

        yield get


@pytest.fixture(scope="session")
def clip_checkpoint(tiny_multimodal_paths: dict[str, Path]) -> Path:
    return tiny_multimodal_paths["clip"]


@pytest.fixture(scope="session")
def gme_checkpoint(tiny_multimodal_paths: dict[str, Path]) -> Path:
    return tiny_multimodal_paths["gme"]


@pytest.fixture(scope="session")
def clip_artifact(tmp_path_factory: pytest.TempPathFactory, clip_checkpoint: Path) -> Path:
    return build_artifact(clip_checkpoint, tmp_path_factory.mktemp("art") / "clip")


@pytest.fixture(scope="session")
def gme_artifact(tmp_path_factory: pytest.TempPathFactory, gme_checkpoint: Path) -> Path:
    return build_artifact(gme_checkpoint, tmp_path_factory.mktemp("art") / "gme")


@pytest.fixture(scope="session")
def media() -> Iterator[str]:
    """The loopback image server (tests/fixtures/media_server.py); yields its base URL."""
    from tests.fixtures.media_server import media_server

    with media_server() as url:
        yield url


@pytest.fixture(scope="session")
def local_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder --allowed-local-media-path names, holding one real photo."""
    from tests.fixtures.media_server import photo_path

    folder = tmp_path_factory.mktemp("media")
    (folder / "chelsea.png").write_bytes(photo_path("chelsea.png").read_bytes())
    return folder


@pytest.fixture(scope="session")
def clip_server(clip_artifact: Path, local_dir: Path) -> Iterator[str]:
    with running_server(clip_artifact, "--allowed-media-domains", "127.0.0.1",
                        "--allowed-local-media-path", str(local_dir),
                        "--max-image-bytes", str(2 * 1024 * 1024)) as url:
        yield url


@pytest.fixture(scope="session")
def gme_server(gme_artifact: Path) -> Iterator[str]:
    with running_server(gme_artifact, "--chat-template", "gme-qwen2-vl",
                        "--allowed-media-domains", "127.0.0.1") as url:
        yield url


@pytest.fixture(scope="session")
def reranker_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random rerankers by family: a BERT cross-encoder and a Qwen3-Reranker
    (devtools/checkpoints/tiny_cross_encoder.py, tiny_qwen3_reranker.py)."""
    from devtools.checkpoints.tiny_cross_encoder import make_tiny_cross_encoder
    from devtools.checkpoints.tiny_qwen3_reranker import make_tiny_qwen3_reranker

    root = tmp_path_factory.mktemp("tiny_rerankers")
    return {"cross_encoder": make_tiny_cross_encoder(root / "ce"),
            "qwen3_reranker": make_tiny_qwen3_reranker(root / "qr")}


@contextlib.contextmanager
def _reranker_server(root: Path, checkpoint: Path, *flags: str) -> Iterator[str]:
    with running_server(build_artifact(checkpoint, root / "artifact"), "--max-wait-ms", "5",
                        *flags) as url:
        yield url


@pytest.fixture(scope="session")
def cross_encoder_server(tmp_path_factory: pytest.TempPathFactory,
                         reranker_paths: dict[str, Path]) -> Iterator[str]:
    """The tiny cross-encoder built and served; small batches (256 padded tokens) so one
    request's documents spread over several, and a 40-document cap to test against."""
    with _reranker_server(tmp_path_factory.mktemp("ce"), reranker_paths["cross_encoder"],
                          "--max-batch-tokens", "256", "--max-rerank-documents", "40") as url:
        yield url


@pytest.fixture(scope="session")
def qwen3_reranker_server(tmp_path_factory: pytest.TempPathFactory,
                          reranker_paths: dict[str, Path]) -> Iterator[str]:
    with _reranker_server(tmp_path_factory.mktemp("qr"),
                          reranker_paths["qwen3_reranker"]) as url:
        yield url


@pytest.fixture(scope="session")
def heads_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random retrieval-head models by family: SPLADE, bge-m3 and a PyLate ColBERT
    (devtools/checkpoints/tiny_sparse.py)."""
    from devtools.checkpoints.tiny_sparse import (make_tiny_bge_m3, make_tiny_colbert,
                                                  make_tiny_splade)

    root = tmp_path_factory.mktemp("tiny_heads")
    return {"splade": make_tiny_splade(root / "splade"), "bge_m3": make_tiny_bge_m3(root / "m3"),
            "colbert": make_tiny_colbert(root / "colbert")}


@pytest.fixture(scope="session")
def heads_artifacts(tmp_path_factory: pytest.TempPathFactory,
                    heads_paths: dict[str, Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("heads_artifacts")
    return {name: build_artifact(path, root / name) for name, path in heads_paths.items()}


@pytest.fixture(scope="session")
def splade_server(heads_artifacts: dict[str, Path]) -> Iterator[str]:
    """Small batches (256 padded tokens), so one request's rows spread over several."""
    with running_server(heads_artifacts["splade"], "--max-wait-ms", "5",
                        "--max-batch-tokens", "256") as url:
        yield url


@pytest.fixture(scope="session")
def bge_m3_server(heads_artifacts: dict[str, Path]) -> Iterator[str]:
    with running_server(heads_artifacts["bge_m3"], "--max-wait-ms", "5",
                        "--max-batch-tokens", "256") as url:
        yield url


@pytest.fixture(scope="session")
def colbert_server(heads_artifacts: dict[str, Path]) -> Iterator[str]:
    with running_server(heads_artifacts["colbert"], "--max-wait-ms", "5",
                        "--max-batch-tokens", "256") as url:
        yield url
