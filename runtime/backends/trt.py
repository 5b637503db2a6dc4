"""TensorRT backend for one tower (graph) of an artifact: one engine, N execution contexts,
each on its own CUDA stream. Both flavours (TensorRT 11, TensorRT for RTX) run here; the
flavour's module is a parameter.

The engine is asked for its I/O (names, modes, dtypes); nothing assumes int64 ids or one
float32 output. Everything is allocated once at load: per context, a device buffer and a
pinned host buffer per I/O tensor, sized for every profile's max shapes. A batch is: pick
the profile (trt_plan.plan_run over the graph's named axes) -> copy into pinned memory ->
async H2D -> set shapes -> execute_async_v3 -> async D2H of the output at the shape the
context reports -> synchronise the context's stream. A context is checked out of a queue
per batch, so two threads never share a context or a stream.

TensorRT for RTX compiles kernels just in time; its runtime cache is loaded from a file
and written back on close, so a restart skips the JIT. TensorRT 11 has no runtime cache.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from runtime.backends.base import BackendLimits
from runtime.backends.cuda_buffers import StreamBuffers
from runtime.backends.gpu import import_tensorrt, machine
from runtime.backends.trt_plan import (BATCH, SEQUENCE, axis_extents, check_compatible,
                                       numpy_dtype, plan_run, seq_buckets)
from runtime.errors import ApplianceError, ArtifactError

log = logging.getLogger(__name__)
RTX = "tensorrt-rtx"


class PlanSource(Protocol):
    """What the backend reads of an artifact (runtime.artifact.Artifact is one): the
    backends stay a leaf that imports nothing of the artifact layer."""

    @property
    def path(self) -> Path: ...

    @property
    def manifest(self) -> Any: ...  # .tensorrt: the TrtRecord

    @property
    def spec(self) -> Any: ...  # .max_len

    def plan_path(self, tower: str) -> Path | None: ...

    def graph(self, tower: str) -> Any: ...  # .inputs and .outputs: axis names per tensor


@dataclass
class _Slot:
    """One execution context with its stream and its device + pinned host buffers."""

    context: Any
    buffers: StreamBuffers
    profile: int = -1


class TensorRtBackend:
    def __init__(self, artifact: PlanSource, tower: str = "text", contexts: int = 2,
                 trt: Any = None, runtime_cache: Path | None = None):
        """trt: the flavour's module (default: imported for the plan's flavour);
        runtime_cache: TensorRT for RTX's JIT cache file, loaded if there, saved on close."""
        record = artifact.manifest.tensorrt
        path = artifact.plan_path(tower)
        if record is None or path is None:
            raise ArtifactError(f"{artifact.path} has no TensorRT plan; build it with "
                                "python -m builder --backend tensorrt (or tensorrt-rtx) ...")
        for warning in check_compatible(record, machine()):
            log.warning(warning)
        self.name = self.flavour = record.flavour
        self.trt = trt or import_tensorrt(self.flavour)
        self.graph = artifact.graph(tower)
        self.max_len = artifact.spec.max_len
        self.profiles = record.plans[tower].profiles
        self.engine = self._deserialize(path)
        self.inputs, self.outputs = self._io()
        self.output = next((n for n in self.graph.outputs if n in self.outputs),
                           next(iter(self.outputs)))
        self.runtime_cache_path = runtime_cache
        self._runtime_configs: list[Any] = []  # RTX: they live as long as the engine
        if self.flavour == RTX:
            self.runtime_cache = self._rtx_load_runtime_cache(runtime_cache)
        self._free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        first = self._context(0)
        sizes = self._buffer_sizes(first)
        self._slots: list[_Slot] = []
        try:
            for i in range(contexts):
                self._slots.append(self._slot(first if i == 0 else self._context(i), sizes))
        except BaseException:  # out of device memory at context 3: free contexts 1 and 2's
            for slot in self._slots:
                slot.buffers.close()
            raise
        for slot in self._slots:
            self._free.put(slot)
        self.limits = self._limits(contexts)
        log.info("%s %s, %s tower: %d contexts, inputs %s, output %s, profiles %s", self.flavour,
                 self.trt.__version__, tower, contexts, list(self.inputs), self.output,
                 [p.name for p in self.profiles])

    def _deserialize(self, path: Path) -> Any:
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(self.logger)
        engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:  # TensorRT logged why (version, corrupt file) through the logger
            raise ArtifactError(f"TensorRT could not deserialize {path}; see the log above")
        return engine

    def _io(self) -> tuple[dict[str, np.dtype], dict[str, np.dtype]]:
        """The engine's inputs and outputs (name -> numpy dtype), in engine order."""
        inputs: dict[str, np.dtype] = {}
        outputs: dict[str, np.dtype] = {}
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            dtype = np.dtype(numpy_dtype(self.engine.get_tensor_dtype(name).name))
            is_input = self.engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT
            (inputs if is_input else outputs)[name] = dtype
        if set(inputs) != set(self.graph.inputs) or not outputs:
            raise ArtifactError(f"the engine's inputs {sorted(inputs)} (outputs {sorted(outputs)})"
                                f" are not the graph's {sorted(self.graph.inputs)}")
        if self.engine.num_optimization_profiles != len(self.profiles):
            raise ArtifactError(f"the engine has {self.engine.num_optimization_profiles} "
                                f"optimisation profiles, the manifest {len(self.profiles)}; "
                                "rebuild the artifact")
        return inputs, outputs

    def _rtx_load_runtime_cache(self, path: Path | None) -> Any:
        """One runtime cache for every context: loaded from `path` when a compatible one is
        there (TensorRT for RTX checks GPU, driver and version), else empty."""
        runtime_config = self.engine.create_runtime_config()
        runtime_cache = runtime_config.create_runtime_cache()
        if path is not None and path.is_file():
            if runtime_cache.deserialize(path.read_bytes()):
                log.info("TensorRT for RTX runtime cache loaded from %s", path)
            else:
                log.warning("the runtime cache %s was made elsewhere; starting a fresh one", path)
        self._runtime_configs.append(runtime_config)
        return runtime_cache

    def _context(self, index: int) -> Any:
        if self.flavour == RTX:  # a config per context, all sharing the one runtime cache
            runtime_config = self.engine.create_runtime_config()
            if not runtime_config.set_runtime_cache(self.runtime_cache):
                raise ApplianceError("TensorRT for RTX refused its runtime cache")
            self._runtime_configs.append(runtime_config)
            context = self.engine.create_execution_context(runtime_config)
        else:
            context = self.engine.create_execution_context()
        if context is None:
            raise ApplianceError(f"TensorRT could not create execution context {index}")
        return context

    def _buffer_sizes(self, context: Any) -> dict[str, int]:
        """Bytes per tensor for every profile's max shapes; the outputs' max shapes as the
        engine derives them from the inputs' (set on the first context, on stream 0)."""
        sizes = dict.fromkeys([*self.inputs, *self.outputs], 0)
        for index, profile in enumerate(self.profiles):
            if not context.set_optimization_profile_async(index, 0):
                raise ApplianceError(f"TensorRT refused optimisation profile {index}")
            for name, rng in profile.shapes:
                self._set_shape(context, name, rng.max)
                sizes[name] = max(sizes[name], math.prod(rng.max) * self.inputs[name].itemsize)
            for name, dtype in self.outputs.items():
                shape = tuple(context.get_tensor_shape(name))
                if min(shape, default=0) < 0:  # an input shape left unset: a bad profile
                    raise ArtifactError(f"{name}'s shape {shape} is unknown in profile {index}")
                sizes[name] = max(sizes[name], math.prod(shape) * dtype.itemsize)
        return sizes

    def _slot(self, context: Any, sizes: Mapping[str, int]) -> _Slot:
        buffers = StreamBuffers(sizes)
        for tensor, pointer in buffers.device.items():
            context.set_tensor_address(tensor, pointer)  # fixed for the slot's life
        return _Slot(context, buffers)

    def _limits(self, contexts: int) -> BackendLimits:
        rows = axis_extents(self.profiles, self.graph.inputs, BATCH)
        seqs = axis_extents(self.profiles, self.graph.inputs, SEQUENCE)
        # Graphs without a sequence axis (images) keep the model's length for the batcher.
        return BackendLimits(max(rows, default=1), max(seqs, default=self.max_len),
                             seq_buckets(self.profiles, self.graph.inputs), concurrency=contexts)

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        missing = set(self.inputs) - set(feeds)
        if missing:
            raise ApplianceError(f"the {self.name} engine needs inputs {sorted(missing)}")
        run = plan_run(self.profiles, self.graph.inputs, {k: feeds[k].shape for k in self.inputs})
        slot = self._free.get()
        try:
            if run.chunks is None:
                return self._run(slot, run.profile, feeds)
            out_axis = list(self.graph.outputs.get(self.output, [BATCH])).index(BATCH)
            return np.concatenate([self._run(slot, run.profile, self._rows(feeds, a, b))
                                   for a, b in run.chunks], axis=out_axis)
        finally:
            self._free.put(slot)

    def _rows(self, feeds: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, Any]:
        """Rows start:stop of every input, along each input's own "batch" axis."""
        return {name: np.take(feeds[name], range(start, stop),
                              axis=list(self.graph.inputs[name]).index(BATCH))
                for name in self.inputs}

    def _run(self, slot: _Slot, profile: int, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        context, buffers = slot.context, slot.buffers
        if slot.profile != profile:
            if not context.set_optimization_profile_async(profile, buffers.stream):
                raise ApplianceError(f"TensorRT refused optimisation profile {profile}")
            slot.profile = profile
        for name, dtype in self.inputs.items():
            data = np.ascontiguousarray(feeds[name], dtype=dtype)  # the engine's dtype
            buffers.upload(name, data)
            self._set_shape(context, name, data.shape)
        if not context.execute_async_v3(buffers.stream):
            raise ApplianceError("TensorRT execute_async_v3 failed; see the log above")
        shape = tuple(context.get_tensor_shape(self.output))
        out = buffers.download(self.output, shape, self.outputs[self.output])
        return out.astype(np.float32, copy=False)  # fp16 engines: float32 vectors out

    @staticmethod
    def _set_shape(context: Any, name: str, shape: tuple[int, ...]) -> None:
        if not context.set_input_shape(name, tuple(shape)):
            raise ApplianceError(f"TensorRT refused shape {tuple(shape)} for {name}")

    def close(self) -> None:
        for slot in self._slots:
            slot.buffers.close()
        self._slots = []
        if self.flavour == RTX and self.engine is not None:
            self._rtx_save_runtime_cache()
        self.engine = None

    def _rtx_save_runtime_cache(self) -> None:
        """Write the runtime cache back atomically (a reader never sees half a file); a
        read-only cache directory costs the next start its JIT, nothing else."""
        path = self.runtime_cache_path
        if path is None:
            return
        data = bytes(memoryview(self.runtime_cache.serialize()))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
        except OSError as exc:
            log.warning("could not save the runtime cache to %s: %s", path, exc)
            return
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            os.unlink(tmp)
            log.warning("could not save the runtime cache to %s: %s", path, exc)
