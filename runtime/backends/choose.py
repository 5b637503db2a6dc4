"""Backend selection: `--backend auto|tensorrt|tensorrt-rtx|onnxruntime`.

auto serves the plan the artifact holds (TensorRT 11 or TensorRT for RTX) when this machine
can run it: the flavour's library imports, cuda-python and a GPU are present and
trt_plan.check_compatible passes; else ONNX Runtime, and it logs why in one line. An
explicit flavour that cannot run fails at once with what is missing or check_compatible's
one message (which names the build to run instead).
"""

from __future__ import annotations

import logging

from runtime.artifact import Artifact
from runtime.backends.base import Backend, BackendLimits
from runtime.backends.gpu import (gpu_count, import_cudart, import_tensorrt, install_hint,
                                  machine)
from runtime.backends.trt_plan import FLAVOURS, Machine, TrtRecord, check_compatible
from runtime.config import RuntimeConfig
from runtime.errors import ArtifactError, MissingDependencyError
from runtime.limits import DEFAULT_BATCH_SIZE

log = logging.getLogger(__name__)
RUNTIME_CACHE = "{tower}.rtx-runtime.cache"  # TensorRT for RTX's JIT cache, beside the plan


def tensorrt_missing(flavour: str = "tensorrt") -> list[str]:
    """What this machine lacks to run the flavour's plans; empty when it has everything."""
    missing = []
    for check in (lambda: import_tensorrt(flavour), import_cudart):
        try:
            check()
        except MissingDependencyError as exc:
            missing.append(str(exc))
    count, why = gpu_count()
    if not count:
        missing.append(f"no GPU: {why}")
    return missing


def require_tensorrt(flavour: str = "tensorrt") -> None:
    missing = tensorrt_missing(flavour)
    if missing:
        raise _lacks(flavour, "; ".join(missing))


def _lacks(flavour: str, lacking: str) -> MissingDependencyError:
    return MissingDependencyError(
        f"the {flavour} backend needs {FLAVOURS[flavour].title}, cuda-python and an NVIDIA "
        f"GPU: {lacking}. "
        f"Install with {install_hint(flavour)} on a GPU machine, or use --backend onnxruntime")


def probe(flavour: str) -> tuple[Machine | None, str]:
    """(this machine, "") when it has what the flavour needs, else (None, what it lacks)."""
    missing = tensorrt_missing(flavour)
    return (None, "; ".join(missing)) if missing else (machine(), "")


def decide(record: TrtRecord | None, requested: str, here: Machine | None,
           lacking: str = "") -> tuple[str, str]:
    """(backend name, reason), pure: `here` is None when the machine lacks `lacking`."""
    if requested == "onnxruntime":
        return "onnxruntime", "requested"
    if requested in FLAVOURS:
        return _explicit(record, requested, here, lacking)
    if record is None:
        return "onnxruntime", "the artifact has no TensorRT plan"
    if here is None:
        return "onnxruntime", f"{record.flavour} plan present but {lacking}"
    try:
        check_compatible(record, here)
    except ArtifactError as exc:
        return "onnxruntime", f"{record.flavour} plan present but {exc}"
    return record.flavour, (f"{record.flavour} {record.version} plan runs on {here.gpu_name} "
                            f"(compute capability {here.compute_capability})")


def _explicit(record: TrtRecord | None, requested: str, here: Machine | None,
              lacking: str) -> tuple[str, str]:
    if record is None:
        raise ArtifactError(f"--backend {requested}: the artifact has no TensorRT plan; build "
                            f"it with python -m builder --backend {requested} ...")
    if record.flavour != requested:
        raise ArtifactError(f"--backend {requested}: the artifact holds a {record.flavour} plan;"
                            f" serve it with --backend {record.flavour} (or auto), or rebuild "
                            f"with python -m builder --backend {requested}")
    if here is None:
        raise _lacks(requested, lacking)
    check_compatible(record, here)  # raises with the build to run instead
    return requested, "requested"


def choose(record: TrtRecord | None, requested: str) -> tuple[str, str]:
    """decide() on this machine, probing for the flavour the choice hinges on."""
    flavour = requested if requested in FLAVOURS else (record.flavour if record else None)
    if requested == "onnxruntime" or flavour is None:
        return decide(record, requested, None)
    return decide(record, requested, *probe(flavour))


def load_backend(artifact: Artifact, config: RuntimeConfig, tower: str = "text") -> Backend:
    """The backend for one tower (graph) of the artifact."""
    name, reason = choose(artifact.manifest.tensorrt, config.backend)
    log.info("backend %s for the %s tower: %s", name, tower, reason)
    if name in FLAVOURS:
        from runtime.backends.trt import TensorRtBackend

        cache = artifact.path / RUNTIME_CACHE.format(tower=tower)
        return TensorRtBackend(artifact, tower, config.trt_contexts, runtime_cache=cache)
    from runtime.backends.ort import OnnxRuntimeBackend

    spec = artifact.spec
    limits = BackendLimits(config.batch.max_batch_size or DEFAULT_BATCH_SIZE, spec.max_len)
    # The text tower's width sizes its CPU batches; other towers keep the default budget.
    width = spec.width if tower == "text" else 0
    return OnnxRuntimeBackend(artifact.onnx_path(tower), limits, config.threads, width)
