"""ONNX Runtime CUDA (runtime/backends/ort_cuda.py) on a real GPU: the IO-bound sessions
give the CPU's vectors, concurrent batches each get their own, and auto picks it for an
artifact without a TensorRT plan. Needs onnxruntime-gpu (make install-gpu) and a GPU;
skipped cleanly elsewhere. Written without a GPU at hand: not run yet."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from runtime.pipeline.choose import probe_ort_cuda

CUDA = probe_ort_cuda()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not CUDA.gpu_name, reason=f"needs ORT CUDA: {CUDA.lacking}")]

TEXTS = ["The cat sat on the mat.", "GPUs run many batches at once.", "Short.",
         "A quick brown fox jumps over the lazy dog, twice, and then sleeps."]


def _feeds(artifact: Path, texts: list[str]) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    from runtime.backends.base import pad_batch

    tokenizer = Tokenizer.from_file(str(artifact / "tokenizer.json"))
    ids, mask = pad_batch([e.ids for e in tokenizer.encode_batch(texts)])
    return {"input_ids": ids, "attention_mask": mask}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_cuda_sessions_match_the_cpu_and_keep_batches_apart(minilm_artifact: Path) -> None:
    from runtime.backends.base import BackendLimits
    from runtime.backends.ort_cuda import OnnxRuntimeIoBackend

    gpu = OnnxRuntimeIoBackend(minilm_artifact / "model.onnx", BackendLimits(64, 256))
    cpu = OnnxRuntimeIoBackend(minilm_artifact / "model.onnx", BackendLimits(64, 256),
                               sessions=1, device="cpu")
    assert gpu.name == "onnxruntime-cuda" and gpu.limits.concurrency == 2
    batches = [[TEXTS[(i + j) % 4] + f" {i}" for j in range(1 + i % 3)] for i in range(16)]
    references = [cpu.embed(_feeds(minilm_artifact, b)) for b in batches]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda b: gpu.embed(_feeds(minilm_artifact, b)), batches))
    for answer, reference in zip(answers, references):
        assert answer.shape == reference.shape
        assert _cosines(answer, reference).min() > 0.9999


def test_auto_serves_onnxruntime_cuda_without_a_plan() -> None:
    from runtime.pipeline.choose import choose

    assert choose(None, "auto") == (
        "onnxruntime-cuda", f"onnxruntime CUDA on {CUDA.gpu_name}: no TensorRT plan in the "
                            f"artifact")
