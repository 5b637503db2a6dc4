"""TensorRT backend: one engine, N execution contexts, each on its own CUDA stream.

Everything is allocated once at load: per context, one device buffer per I/O tensor sized
for the largest profile max shape (trt_plan.buffer_bytes) and a pinned host buffer for each,
so a batch is: copy into pinned memory -> async H2D -> set shapes -> execute_async_v3 ->
async D2H -> synchronise the context's stream. The batcher runs up to N batches at once
(BackendLimits.concurrency); a context is checked out of a queue for each batch, so two
threads never share a context or a stream.
"""

from __future__ import annotations

import ctypes
import logging
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from runtime.backend import BackendLimits
from runtime.errors import ApplianceError, ArtifactError
from runtime.gpu import cuda_call, import_cudart, import_tensorrt, machine
from runtime.manifest import Manifest
from runtime.trt_plan import (Profile, buffer_bytes, check_compatible, choose_profile,
                              seq_buckets, split_rows)

log = logging.getLogger(__name__)
OUTPUT = "embeddings"


@dataclass
class _Slot:
    """One execution context with its stream and its device + pinned host buffers."""

    context: Any
    stream: int
    device: dict[str, int]  # tensor -> device pointer
    host: dict[str, np.ndarray]  # tensor -> pinned bytes (uint8 view)
    profile: int = -1


class TensorRtBackend:
    name = "tensorrt"

    def __init__(self, artifact: str | Path, manifest: Manifest, contexts: int = 2):
        plan = manifest.tensorrt
        if not plan:
            raise ArtifactError(f"{artifact} has no TensorRT plan; build it with "
                                "python -m builder --backend tensorrt ...")
        for warning in check_compatible(plan, machine()):
            log.warning(warning)
        self.trt = import_tensorrt()
        self.cudart = import_cudart()
        self.inputs = tuple(manifest.spec.inputs)
        self.profiles = tuple(Profile.from_dict(p) for p in plan["profiles"])
        self.dims = manifest.spec.dims
        self.engine = self._deserialize(Path(artifact) / plan["plan"])
        self._sizes = buffer_bytes(self.profiles, {k: 8 for k in self.inputs},  # int64 ids/mask
                                   {OUTPUT: self.dims * 4})  # float32 vectors
        self._free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        self._slots = [self._make_slot(i) for i in range(contexts)]
        for slot in self._slots:
            self._free.put(slot)
        self.limits = BackendLimits(max(p.max_batch for p in self.profiles),
                                    max(p.max_seq for p in self.profiles),
                                    seq_buckets(self.profiles), concurrency=contexts)
        log.info("tensorrt %s: %d contexts, profiles %s", self.trt.__version__, contexts,
                 [(p.name, p.max_batch, p.max_seq) for p in self.profiles])

    def _deserialize(self, path: Path) -> Any:
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(self.logger)
        engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:  # TensorRT logged why (version, corrupt file) through the logger
            raise ArtifactError(f"TensorRT could not deserialize {path}; see the log above")
        return engine

    def _make_slot(self, index: int) -> _Slot:
        context = self.engine.create_execution_context()
        if context is None:
            raise ApplianceError(f"TensorRT could not create execution context {index}")
        stream = cuda_call(self.cudart.cudaStreamCreateWithFlags(self.cudart.cudaStreamNonBlocking))
        device, host = {}, {}
        for tensor, size in self._sizes.items():
            device[tensor] = cuda_call(self.cudart.cudaMalloc(size))
            pinned = cuda_call(self.cudart.cudaMallocHost(size))
            host[tensor] = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(pinned))
            context.set_tensor_address(tensor, device[tensor])  # fixed for the slot's life
        return _Slot(context, int(stream), device, host)

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        batch, seq = feeds[self.inputs[0]].shape
        index = choose_profile(self.profiles, seq)
        chunks = split_rows(batch, self.profiles[index].max_batch)
        slot = self._free.get()
        try:
            return np.concatenate([self._run(slot, index, {k: feeds[k][a:b] for k in self.inputs})
                                   for a, b in chunks])
        finally:
            self._free.put(slot)

    def _run(self, slot: _Slot, profile: int, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        cudart, stream = self.cudart, slot.stream
        if slot.profile != profile:
            if not slot.context.set_optimization_profile_async(profile, stream):
                raise ApplianceError(f"TensorRT refused optimisation profile {profile}")
            slot.profile = profile
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in self.inputs:
            data = np.ascontiguousarray(feeds[name], dtype=np.int64)
            slot.host[name][: data.nbytes] = data.view(np.uint8).reshape(-1)
            cuda_call(cudart.cudaMemcpyAsync(slot.device[name], slot.host[name].ctypes.data,
                                             data.nbytes, h2d, stream))
            if not slot.context.set_input_shape(name, data.shape):
                raise ApplianceError(f"TensorRT refused shape {data.shape} for {name}")
        if not slot.context.execute_async_v3(stream):
            raise ApplianceError("TensorRT execute_async_v3 failed; see the log above")
        rows = len(feeds[self.inputs[0]])
        nbytes = rows * self.dims * 4
        cuda_call(cudart.cudaMemcpyAsync(slot.host[OUTPUT].ctypes.data, slot.device[OUTPUT],
                                         nbytes, d2h, stream))
        cuda_call(cudart.cudaStreamSynchronize(stream))
        return slot.host[OUTPUT][:nbytes].view(np.float32).reshape(rows, self.dims).copy()

    def close(self) -> None:
        for slot in self._slots:
            cuda_call(self.cudart.cudaStreamSynchronize(slot.stream))
            for tensor in self._sizes:
                cuda_call(self.cudart.cudaFree(slot.device[tensor]))
                cuda_call(self.cudart.cudaFreeHost(slot.host[tensor].ctypes.data))
            cuda_call(self.cudart.cudaStreamDestroy(slot.stream))
        self._slots = []
        self.engine = None
