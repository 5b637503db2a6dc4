"""The one place TensorRT and cuda-python are imported, and what the machine offers.

Both are optional (`pip install -e '.[tensorrt]'`); a missing one raises
MissingDependencyError naming the extra. Used by runtime.backends.trt, runtime.backends.choose and the
builder's compile step; the server and batcher never import this module's libraries.
"""

from __future__ import annotations

from typing import Any

from runtime.errors import ApplianceError, MissingDependencyError
from runtime.backends.trt_plan import Machine

INSTALL = "pip install -e '.[tensorrt]'"


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError:
        try:  # tensorrt-cu13-bindings alone: the same binding module under its own name
            import tensorrt_bindings as tensorrt
        except (ImportError, OSError) as exc:  # no TensorRT libraries to load
            raise MissingDependencyError(
                f"TensorRT is not installed or cannot load its libraries ({exc}); "
                f"install it with {INSTALL}") from exc
    return tensorrt


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
    """TensorRT version, GPU name and compute capability of this process's device."""
    trt = import_tensorrt()
    props = cuda_call(import_cudart().cudaGetDeviceProperties(device))
    name = props.name.split(b"\0", 1)[0].decode() if isinstance(props.name, bytes) else props.name
    return Machine(name, f"{props.major}.{props.minor}", {"tensorrt": trt.__version__})
