"""The one place TensorRT (either flavour) and cuda-python are imported, and what the
machine offers.

Both are optional (`pip install -e '.[tensorrt]'` or `'.[tensorrt-rtx]'`); a missing one
raises MissingDependencyError naming the extra. Used by runtime.backends.trt,
runtime.pipeline.choose and the builder's compile step; the server and batcher never import
this module's libraries.
"""

from __future__ import annotations

import importlib
from typing import Any

from runtime.errors import ApplianceError, MissingDependencyError
from runtime.backends.trt_plan import FLAVOURS, Machine

INSTALL = "pip install -e '.[tensorrt]'"


def install_hint(flavour: str) -> str:
    return f"pip install -e '.[{FLAVOURS[flavour].extra}]'"


def import_tensorrt(flavour: str = "tensorrt") -> Any:
    """The flavour's binding module: its full package first, then the -bindings wheel's
    module of the same API (TensorRT 11's loads only where its libraries do)."""
    errors = []
    for name in FLAVOURS[flavour].modules:
        try:
            return importlib.import_module(name)
        except (ImportError, OSError) as exc:  # OSError: libraries present but unloadable
            errors.append(f"{name}: {exc}")
    raise MissingDependencyError(
        f"{FLAVOURS[flavour].title} is not installed or cannot load its libraries "
        f"({'; '.join(errors)}); "
        f"install it with {install_hint(flavour)}")


def library_versions() -> dict[str, str]:
    """flavour -> version, for each TensorRT flavour that imports here."""
    versions = {}
    for flavour in FLAVOURS:
        try:
            versions[flavour] = str(import_tensorrt(flavour).__version__)
        except MissingDependencyError:
            continue
    return versions


def import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise MissingDependencyError(
            f"cuda-python is not installed ({exc}); install it with {INSTALL}") from exc
    return cudart


def cuda_call(result: Any) -> Any:
    """cuda-python returns (error, *values): raise on an error, else the value(s)."""
    cudart = import_cudart()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, message = cudart.cudaGetErrorString(err)
        raise ApplianceError(f"CUDA error {err}: {message.decode(errors='replace')}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def free_memory(device: int = 0) -> int:
    """Bytes of the GPU's memory free now, for the startup check that the served models fit
    (server/memory_fit.py)."""
    cudart = import_cudart()
    cuda_call(cudart.cudaSetDevice(device))
    free, _total = cuda_call(cudart.cudaMemGetInfo())
    return int(free)


def gpu_count() -> tuple[int, str]:
    """(number of CUDA devices, why none) without raising; cuda-python missing counts as 0."""
    try:
        cudart = import_cudart()
    except MissingDependencyError as exc:
        return 0, str(exc)
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess:
        return 0, f"no usable CUDA device ({err.name})"
    return count, "" if count else "no CUDA device"


def machine(device: int = 0) -> Machine:
    """GPU name, compute capability and the TensorRT versions this process can load."""
    props = cuda_call(import_cudart().cudaGetDeviceProperties(device))
    name = props.name.split(b"\0", 1)[0].decode() if isinstance(props.name, bytes) else props.name
    return Machine(name, f"{props.major}.{props.minor}", library_versions())


def total_memory_gib(device: int = 0) -> float:
    """The device's memory in GiB: what a build on this machine sizes its plans for."""
    props = cuda_call(import_cudart().cudaGetDeviceProperties(device))
    return int(props.totalGlobalMem) / (1 << 30)


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
        raise lacks(flavour, "; ".join(missing))


def lacks(flavour: str, lacking: str) -> MissingDependencyError:
    """What a flavour that cannot run here lacks, as the one error the launch reports."""
    return MissingDependencyError(
        f"the {flavour} backend needs {FLAVOURS[flavour].title}, cuda-python and an NVIDIA "
        f"GPU: {lacking}. "
        f"Install with {install_hint(flavour)} on a GPU machine, or use --backend onnxruntime")
