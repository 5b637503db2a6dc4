"""Backend selection: `--backend auto|tensorrt|onnxruntime`.

auto picks TensorRT when the artifact has a plan AND TensorRT imports AND a GPU is present,
else ONNX Runtime, and logs which and why. `tensorrt` requested without one of those fails
at once with everything that is missing and how to install it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from runtime.backends.base import Backend, BackendLimits
from runtime.config import RuntimeConfig
from runtime.errors import ArtifactError, MissingDependencyError
from runtime.backends.gpu import INSTALL, gpu_count, import_cudart, import_tensorrt
from runtime.manifest import Manifest

log = logging.getLogger(__name__)


def tensorrt_missing() -> list[str]:
    """What this machine lacks to run TensorRT; empty when it has everything."""
    missing = []
    for check in (import_tensorrt, import_cudart):
        try:
            check()
        except MissingDependencyError as exc:
            missing.append(str(exc))
    count, why = gpu_count()
    if not count:
        missing.append(f"no GPU: {why}")
    return missing


def require_tensorrt() -> None:
    missing = tensorrt_missing()
    if missing:
        raise MissingDependencyError(
            "the TensorRT backend needs TensorRT, cuda-python and an NVIDIA GPU: "
            + "; ".join(missing) + f". Install with {INSTALL} on a GPU machine, "
            "or use --backend onnxruntime")


def choose(manifest: Manifest, requested: str) -> tuple[str, str]:
    """(backend name, reason)."""
    if requested == "onnxruntime":
        return "onnxruntime", "requested"
    if requested == "tensorrt":
        require_tensorrt()
        if not manifest.tensorrt:
            raise ArtifactError("--backend tensorrt: the artifact has no TensorRT plan; build "
                                "it with python -m builder --backend tensorrt ...")
        return "tensorrt", "requested"
    if not manifest.tensorrt:
        return "onnxruntime", "the artifact has no TensorRT plan"
    missing = tensorrt_missing()
    if missing:
        return "onnxruntime", "TensorRT plan present but " + "; ".join(missing)
    return "tensorrt", "TensorRT plan, TensorRT and a GPU are present"


def load_backend(artifact: Path, manifest: Manifest, config: RuntimeConfig,
                 tower: str = "text") -> Backend:
    """The backend for one tower (graph) of the artifact."""
    name, reason = choose(manifest, config.backend)
    log.info("backend %s for the %s tower: %s", name, tower, reason)
    if name == "tensorrt":
        from runtime.backends.trt import TensorRtBackend

        return TensorRtBackend(artifact, manifest, config.trt_contexts)
    from runtime.backends.ort import OnnxRuntimeBackend

    limits = BackendLimits(config.batch.max_batch_size, manifest.spec.max_len)
    # The text tower's width sizes its CPU batches; other towers keep the default budget.
    width = manifest.spec.dims if tower == "text" else 0
    return OnnxRuntimeBackend(artifact / manifest.graphs[tower].onnx, limits, config.threads,
                              width)
