"""TensorRT backend: one engine, N execution contexts, each on its own CUDA stream.

Everything is allocated once at load: per context, one device buffer per I/O tensor sized
for the largest profile max shape (trt_plan.buffer_bytes) and a pinned host buffer for each,
so a batch is: copy into pinned memory -> async H2D -> set shapes -> execute_async_v3 ->
async D2H -> synchronise the context's stream. The batcher runs up to N batches at once
(BackendLimits.concurrency); a context is checked out of a queue for each batch, so two
threads never share a context or a stream.
"""

from __future__ import annotations

import logging
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from runtime.backends.base import BackendLimits
from runtime.backends.cuda_buffers import StreamBuffers
from runtime.errors import ApplianceError, ArtifactError
from runtime.backends.gpu import import_tensorrt, machine
from runtime.manifest import Manifest
from runtime.backends.trt_plan import (buffer_bytes, check_compatible, choose_profile,
                              seq_buckets, split_rows)

log = logging.getLogger(__name__)
OUTPUT = "embeddings"


@dataclass
class _Slot:
    """One execution context with its stream and its device + pinned host buffers."""

    context: Any
    buffers: StreamBuffers
    profile: int = -1


class TensorRtBackend:
    name = "tensorrt"

    def __init__(self, artifact: str | Path, manifest: Manifest, contexts: int = 2):
        record = manifest.tensorrt
        if not record:
            raise ArtifactError(f"{artifact} has no TensorRT plan; build it with "
                                "python -m builder --backend tensorrt ...")
        for warning in check_compatible(record, machine()):
            log.warning(warning)
        self.trt = import_tensorrt()
        self.inputs = tuple(manifest.spec.inputs)
        plan = record.plans["text"]
        self.profiles = plan.profiles
        self.dims = manifest.spec.dims
        self.engine = self._deserialize(Path(artifact) / plan.file)
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
        buffers = StreamBuffers(self._sizes)
        for tensor, pointer in buffers.device.items():
            context.set_tensor_address(tensor, pointer)  # fixed for the slot's life
        return _Slot(context, buffers)

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
        buffers = slot.buffers
        if slot.profile != profile:
            if not slot.context.set_optimization_profile_async(profile, buffers.stream):
                raise ApplianceError(f"TensorRT refused optimisation profile {profile}")
            slot.profile = profile
        for name in self.inputs:
            data = np.ascontiguousarray(feeds[name], dtype=np.int64)
            buffers.upload(name, data)
            if not slot.context.set_input_shape(name, data.shape):
                raise ApplianceError(f"TensorRT refused shape {data.shape} for {name}")
        if not slot.context.execute_async_v3(buffers.stream):
            raise ApplianceError("TensorRT execute_async_v3 failed; see the log above")
        rows = len(feeds[self.inputs[0]])
        return buffers.download(OUTPUT, (rows, self.dims), np.float32)

    def close(self) -> None:
        for slot in self._slots:
            slot.buffers.close()
        self._slots = []
        self.engine = None
