"""ONNX Runtime backend: CPU execution provider, CUDA when onnxruntime-gpu sees a GPU."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from runtime.backend import BackendLimits
from runtime.errors import ArtifactError

log = logging.getLogger(__name__)


def _session_options(threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One batch at a time uses every core; inter-op threads would only contend.
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, limits: BackendLimits, threads: int = 0):
        import onnxruntime as ort

        threads = threads or len(os.sched_getaffinity(0))
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(
                str(onnx_path), sess_options=_session_options(threads), providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"ONNX Runtime could not load {onnx_path}: {exc}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.providers = self.session.get_providers()
        self.limits = limits
        log.info("onnxruntime %s, providers %s, %d threads", ort.__version__, self.providers, threads)

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        (vectors,) = self.session.run(None, {k: feeds[k] for k in self.input_names})
        return np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        self.session = None
