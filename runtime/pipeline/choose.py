"""Backend selection: `--backend auto|tensorrt|tensorrt-rtx|onnxruntime|onnxruntime-cuda`.

auto serves the plan the artifact holds (TensorRT 11 or TensorRT for RTX) when this machine
can run it: the flavour's library imports, cuda-python and a GPU are present and
trt_plan.check_compatible passes; else ONNX Runtime on CUDA when onnxruntime has its CUDA
provider (onnxruntime-gpu, `make install-gpu`) and cuda-python sees a GPU; else ONNX
Runtime on CPU. It logs which and why in one line. `onnxruntime` is always the CPU (also on
a GPU machine); an explicit flavour or `onnxruntime-cuda` that cannot run fails at once
with what is missing or check_compatible's one message (which names the build to run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

from runtime.adapters.base import Tower
from runtime.artifact import Artifact
from runtime.backends.base import Backend, BackendLimits
# require_tensorrt and tensorrt_missing: imported for this module's users too
from runtime.backends.gpu import (gpu_count, lacks, machine, require_tensorrt,  # noqa: F401
                                  tensorrt_missing)
from runtime.backends.trt_plan import FLAVOURS, Machine, TrtRecord, check_compatible
from runtime.config import RuntimeConfig
from runtime.errors import ArtifactError, MissingDependencyError
from runtime.settings import DEFAULT_BATCH_SIZE

log = logging.getLogger(__name__)
GPU_BATCH_SIZE = 256  # rows per call on ONNX Runtime CUDA when --max-batch-size is not given
RUNTIME_CACHE = "{tower}.rtx-runtime.cache"  # TensorRT for RTX's JIT cache, beside the plan
ORT_CUDA = "onnxruntime-cuda"


@dataclass(frozen=True)
class OrtCuda:
    """Whether ONNX Runtime can run on a GPU here: the GPU's name, or what is lacking."""

    gpu_name: str = ""
    lacking: str = "not probed"


def probe_ort_cuda() -> OrtCuda:
    """onnxruntime's CUDA provider and a GPU (asked of cuda-python), without raising."""
    from runtime.backends.ort_cuda import cuda_provider_missing

    missing = cuda_provider_missing()
    if missing:
        return OrtCuda(lacking=missing)
    count, why = gpu_count()
    if not count:
        return OrtCuda(lacking=f"no GPU: {why}")
    return OrtCuda(gpu_name=machine().gpu_name, lacking="")


def probe(flavour: str) -> tuple[Machine | None, str]:
    """(this machine, "") when it has what the flavour needs, else (None, what it lacks)."""
    missing = tensorrt_missing(flavour)
    return (None, "; ".join(missing)) if missing else (machine(), "")


def decide(record: TrtRecord | None, requested: str, here: Machine | None,
           lacking: str = "", cuda: OrtCuda = OrtCuda()) -> tuple[str, str]:
    """(backend name, reason), pure: `here` is None when the machine lacks `lacking` (for
    TensorRT); `cuda` says whether ONNX Runtime runs on a GPU here."""
    if requested == "onnxruntime":
        return "onnxruntime", "requested"
    if requested == ORT_CUDA:
        if not cuda.gpu_name:
            raise MissingDependencyError(
                f"--backend {ORT_CUDA} needs onnxruntime-gpu and an NVIDIA GPU: "
                f"{cuda.lacking}; or serve on CPU with --backend onnxruntime")
        return ORT_CUDA, f"requested, on {cuda.gpu_name}"
    if requested in FLAVOURS:
        return _explicit(record, requested, here, lacking)
    if record is None:
        return _onnxruntime("no TensorRT plan in the artifact", cuda)
    if here is None:
        return _onnxruntime(f"{record.flavour} plan present but {lacking}", cuda)
    try:
        check_compatible(record, here)
    except ArtifactError as exc:
        return _onnxruntime(f"{record.flavour} plan present but {exc}", cuda)
    return record.flavour, (f"{record.flavour} {record.version} plan runs on {here.gpu_name} "
                            f"(compute capability {here.compute_capability})")


def _onnxruntime(why_not_tensorrt: str, cuda: OrtCuda) -> tuple[str, str]:
    if cuda.gpu_name:
        return ORT_CUDA, f"onnxruntime CUDA on {cuda.gpu_name}: {why_not_tensorrt}"
    return "onnxruntime", f"onnxruntime CPU: {why_not_tensorrt}; no CUDA: {cuda.lacking}"


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
        raise lacks(requested, lacking)
    check_compatible(record, here)  # raises with the build to run instead
    return requested, "requested"


def choose(record: TrtRecord | None, requested: str) -> tuple[str, str]:
    """decide() on this machine, probing only what the choice hinges on."""
    if requested == "onnxruntime":
        return decide(record, requested, None)
    if requested in FLAVOURS:
        return decide(record, requested, *probe(requested))
    if requested == ORT_CUDA:
        return decide(record, requested, None, "", probe_ort_cuda())
    here, lacking = probe(record.flavour) if record is not None else (None, "")
    runs = here is not None and decide(record, "auto", here, lacking)[0] in FLAVOURS
    return decide(record, requested, here, lacking, OrtCuda(lacking="") if runs
                  else probe_ort_cuda())


def load_backend(artifact: Artifact, config: RuntimeConfig, tower: str = "text") -> Backend:
    """The backend for one tower (graph) of the artifact."""
    name, reason = choose(artifact.manifest.tensorrt, config.backend)
    log.info("backend %s for the %s tower: %s", name, tower, reason)
    if name in FLAVOURS:
        from runtime.backends.trt import TensorRtBackend

        cache = artifact.path / RUNTIME_CACHE.format(tower=tower)
        return TensorRtBackend(artifact, tower, config.trt_contexts, runtime_cache=cache)
    spec = artifact.spec
    if name == ORT_CUDA:
        from runtime.backends.ort_cuda import OnnxRuntimeIoBackend

        # A GPU call costs thousands of tokens (runtime/pipeline/calibrate.py): larger batches, still
        # within the token budget (issue 26: bge-base on an H200 ran 2x the tokens/s at 256
        # rows as at 64).
        limits = BackendLimits(config.batch.max_batch_size or GPU_BATCH_SIZE, spec.max_len)
        # --batches-in-flight: the sessions (one batch in flight each); else ort_cuda's default.
        return OnnxRuntimeIoBackend(artifact.onnx_path(tower), limits,
                                    sessions=config.batch.concurrency or 0, device="cuda")
    from runtime.backends.ort import OnnxRuntimeBackend

    limits = BackendLimits(config.batch.max_batch_size or DEFAULT_BATCH_SIZE, spec.max_len)
    # The text tower's width sizes its CPU batches; other towers keep the default budget.
    width = spec.width if tower == "text" else 0
    return OnnxRuntimeBackend(artifact.onnx_path(tower), limits, config.threads, width,
                              cores=config.cores)


def open_backends(artifact: Artifact, config: RuntimeConfig, towers: Sequence[Tower],
                   given: Mapping[str, Backend]) -> dict[str, Backend]:
    """Every tower's backend; those opened here are closed again if a later one fails."""
    backends: dict[str, Backend] = {}
    try:
        for tower in towers:
            backends[tower.name] = given.get(tower.name) or load_backend(artifact, config,
                                                                         tower.name)
    except BaseException:
        for name, backend in backends.items():
            if name not in given:
                backend.close()
        raise
    return backends
