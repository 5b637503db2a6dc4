"""ONNX Runtime on an NVIDIA GPU (CUDAExecutionProvider) with IO binding, several batches
in flight: for GPUs where TensorRT is not installed or its plan does not run.

Install: `make install-gpu` (onnxruntime-gpu replaces the CPU wheel; both install the same
`onnxruntime` module, README "Serving on a GPU without TensorRT").

IO binding: a batch's inputs are bound from host memory (`bind_cpu_input`) and copied to
the device inside the run, on that run's own stream; the output is bound on the device
(ONNX Runtime allocates it from its arena) and copied back once. The graph's I/O dtypes
come from the session (an fp16 artifact keeps int64 ids/masks and float32 vectors at its
edges, builder/precision.py; a float16 input would be cast here). Not
`OrtValue.ortvalue_from_numpy(..., "cuda")`: that is a synchronous cudaMemcpy outside the
run's stream.

Batches in flight: N sessions of the same graph, one batch each at a time (a free-list).
ONNX Runtime's CUDA provider (1.14+) gives every run a stream of its own (non-blocking,
from a pool: onnxruntime/core/providers/cuda/cuda_stream_handle.cc), so the N sessions'
kernels and copies overlap. Separate sessions (rather than N threads on one) keep each
run's arena apart and are what a CUDA graph needs (one captured stream per session);
the price is N copies of the weights, so N defaults to DEFAULT_SESSIONS only for graphs
under REPLICATE_MAX_BYTES, else 1. `--batches-in-flight N` sets it. Provider options are
ONNX Runtime's defaults except the device: none was measured faster here (no GPU).

The same class runs on device "cpu" (CPUExecutionProvider, one thread per session) so the
IO-binding path is tested on machines without a GPU.
"""

from __future__ import annotations

import logging
import queue
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from runtime.backends.base import BackendLimits
from runtime.backends.ort import arena_run_options
from runtime.errors import ArtifactError, MissingDependencyError

log = logging.getLogger(__name__)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
INSTALL_GPU = "make install-gpu (or pip uninstall -y onnxruntime && pip install -e '.[gpu]')"
DEFAULT_SESSIONS = 2
REPLICATE_MAX_BYTES = 2 << 30  # two copies of a 2 GiB graph + activations fit a 16 GB card
NUMPY_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32,
                "tensor(float)": np.float32, "tensor(float16)": np.float16}


def cuda_provider_missing() -> str:
    """Why onnxruntime cannot run on CUDA in this environment; "" when its CUDA provider is
    there (whether a GPU is present is asked of cuda-python: runtime.backends.gpu)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return f"onnxruntime does not import ({exc})"
    if CUDA not in ort.get_available_providers():
        return f"onnxruntime {ort.__version__} has no {CUDA} (install it with {INSTALL_GPU})"
    return ""


def default_sessions(graph_bytes: int) -> int:
    """Batches in flight when --batches-in-flight is not given: one session holds one copy
    of the weights, so only graphs small enough for two copies get two."""
    return DEFAULT_SESSIONS if graph_bytes <= REPLICATE_MAX_BYTES else 1


def graph_bytes(onnx_path: Path) -> int:
    """The graph and its external weights (model.onnx + model.onnx.data)."""
    return sum(p.stat().st_size for p in onnx_path.parent.glob(onnx_path.name + "*"))


def _preload_cuda_libraries(ort: Any) -> None:
    """onnxruntime-gpu[cuda,cudnn] ships CUDA and cuDNN as nvidia-* wheels; preload_dlls
    puts them in the process before the first CUDA session (a system CUDA also works)."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return opts


class OnnxRuntimeIoBackend:
    """N sessions of one graph on `device` ("cuda" or "cpu"), each batch IO-bound."""

    def __init__(self, onnx_path: str | Path, limits: BackendLimits, sessions: int = 0,
                 device: str = "cuda", device_id: int = 0):
        import onnxruntime as ort

        onnx_path = Path(onnx_path)
        self.device, self.device_id = device, device_id
        self.name = "onnxruntime-cuda" if device == "cuda" else "onnxruntime"
        count = sessions or default_sessions(graph_bytes(onnx_path))
        if device == "cuda":
            _preload_cuda_libraries(ort)
        made = [self._session(onnx_path) for _ in range(count)]
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for session in made:
            self._free.put(session)
        self._sessions = made
        self.input_names = [i.name for i in made[0].get_inputs()]
        self._dtypes = {i.name: NUMPY_DTYPES.get(i.type) for i in made[0].get_inputs()}
        self.output_name = made[0].get_outputs()[0].name
        self.limits = BackendLimits(limits.max_batch_size, limits.max_seq_len,
                                    limits.seq_buckets, concurrency=count)
        where = f"CUDA device {device_id}" if device == "cuda" else "CPU"
        log.info("onnxruntime %s on %s: %d sessions (batches in flight), IO binding, "
                 "graph %.0f MB", ort.__version__, where, count, graph_bytes(onnx_path) / 1e6)

    def _session(self, onnx_path: Path) -> Any:
        import onnxruntime as ort

        if self.device == "cuda":
            providers: list[Any] = [(CUDA, {"device_id": str(self.device_id)}), CPU]
        else:
            providers = [CPU]
        try:
            session = ort.InferenceSession(str(onnx_path), sess_options=_session_options(
                0 if self.device == "cuda" else 1), providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"ONNX Runtime could not load {onnx_path}: {exc}") from exc
        if self.device == "cuda" and session.get_providers()[0] != CUDA:
            # ONNX Runtime falls back to CPU silently when the CUDA libraries do not load.
            raise MissingDependencyError(
                f"onnxruntime could not start {CUDA} on device {self.device_id} (its CUDA "
                f"or cuDNN libraries did not load; see the warning above); install with "
                f"{INSTALL_GPU}, or serve on CPU with --backend onnxruntime")
        return session

    def _bind(self, session: Any, feeds: Mapping[str, np.ndarray]) -> Any:
        binding = session.io_binding()
        for name in self.input_names:
            dtype = self._dtypes[name]
            value = feeds[name] if dtype is None else feeds[name].astype(dtype, copy=False)
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.bind_output(self.output_name, self.device, self.device_id)
        return binding

    def _arena(self, feeds: Mapping[str, np.ndarray], arena: str) -> Any:
        """Token batches past ARENA_KEEP_CELLS hand their arena memory back (ort.py)."""
        if self.input_names[0] != "input_ids":
            return None
        return arena_run_options(tuple(feeds["input_ids"].shape), arena)

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        session = self._free.get()
        try:
            binding = self._bind(session, feeds)
            arena = f"gpu:{self.device_id}" if self.device == "cuda" else "cpu:0"
            session.run_with_iobinding(binding, self._arena(feeds, arena))
            (vectors,) = binding.copy_outputs_to_cpu()
        finally:
            self._free.put(session)
        return np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        self._sessions = []
        self._free = queue.SimpleQueue()
