"""The ONNX Runtime IO-binding backend (runtime/backends/ort_cuda.py) on the CPU: the path
the GPU runs (bind inputs, bind the output on the device, run_with_iobinding, copy back
once, N sessions as batches in flight), here on device "cpu" with the real all-MiniLM
artifact. On a GPU the same class runs with device "cuda" (tests/gpu/test_ort_cuda.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from runtime.backends.base import BackendLimits, pad_batch
from runtime.backends.ort_cuda import (DEFAULT_SESSIONS, REPLICATE_MAX_BYTES,
                                       OnnxRuntimeIoBackend, cuda_provider_missing,
                                       default_sessions)

SENTENCES = [
    "The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.",
    "Embeddings map text to vectors.", "ONNX Runtime binds inputs and outputs on a device.",
    "Short.", "Batches of different lengths are padded to the longest row in the batch.",
    "GPUs run many batches at once on separate streams.", "Hello world",
]


def _feeds(artifact: Path, texts: list[str]) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(artifact / "tokenizer.json"))
    ids, mask = pad_batch([e.ids for e in tokenizer.encode_batch(texts)])
    return {"input_ids": ids, "attention_mask": mask}


def _plain_run(artifact: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(artifact / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    (vectors,) = session.run(None, feeds)
    return np.asarray(vectors, dtype=np.float32)


@pytest.fixture(scope="module")
def backend(minilm_artifact: Path) -> OnnxRuntimeIoBackend:
    return OnnxRuntimeIoBackend(minilm_artifact / "model.onnx", BackendLimits(64, 256),
                                sessions=3, device="cpu")


def test_io_binding_returns_the_plain_run_vectors(minilm_artifact: Path,
                                                  backend: OnnxRuntimeIoBackend) -> None:
    feeds = _feeds(minilm_artifact, SENTENCES)
    ours = backend.embed(feeds)
    reference = _plain_run(minilm_artifact, feeds)
    assert ours.shape == (8, 384) and ours.dtype == np.float32
    assert np.abs(ours - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert backend.limits.concurrency == 3 and backend.name == "onnxruntime"


def test_concurrent_batches_each_get_their_own_vectors(minilm_artifact: Path,
                                                       backend: OnnxRuntimeIoBackend) -> None:
    """24 batches (different rows, lengths and sizes) from 8 threads over 3 sessions: every
    answer is its own batch's reference, none another's."""
    batches = [[SENTENCES[(i + j) % 8] + f" {i}" * (i % 5) for j in range(1 + i % 4)]
               for i in range(24)]
    references = [_plain_run(minilm_artifact, _feeds(minilm_artifact, b)) for b in batches]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: backend.embed(_feeds(minilm_artifact, b)), batches))
    for answer, reference in zip(answers, references):
        assert answer.shape == reference.shape
        assert np.abs(answer - reference).max() < 1e-5
    assert len({a.tobytes() for a in answers}) == 24  # no batch got another's vectors


def test_int32_feeds_are_cast_to_the_graphs_int64(minilm_artifact: Path,
                                                  backend: OnnxRuntimeIoBackend) -> None:
    feeds = _feeds(minilm_artifact, SENTENCES[:3])
    narrow = {k: v.astype(np.int32) for k, v in feeds.items()}
    assert np.abs(backend.embed(narrow) - backend.embed(feeds)).max() == 0.0


def test_sessions_default_to_two_only_for_graphs_that_fit_twice() -> None:
    assert default_sessions(90_000_000) == DEFAULT_SESSIONS == 2
    assert default_sessions(REPLICATE_MAX_BYTES) == 2
    assert default_sessions(REPLICATE_MAX_BYTES + 1) == 1


def test_this_machine_says_why_onnxruntime_has_no_cuda() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    missing = cuda_provider_missing()
    assert missing.startswith(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider")
    assert "make install-gpu" in missing and "'.[gpu]'" in missing
