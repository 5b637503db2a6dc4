"""One CUDA stream with a device buffer and a pinned host buffer per tensor.

The TensorRT backend's memory path, kept apart from the engine so that it runs (and is
tested, tests/gpu/test_cuda_buffers.py) on any CUDA machine with cuda-python, TensorRT or
not. Everything is allocated once: a batch only copies into pinned memory, queues the
async copies on the stream and synchronises that stream, never the whole device.
"""

from __future__ import annotations

import ctypes
from typing import Any, Mapping

import numpy as np

from runtime.backends.gpu import cuda_call, import_cudart


class StreamBuffers:
    """Not thread-safe: one owner at a time (the TensorRT backend checks a slot out)."""

    def __init__(self, sizes: Mapping[str, int]):
        cudart = self.cudart = import_cudart()
        self.sizes = dict(sizes)
        self.stream = int(cuda_call(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)))
        self.device: dict[str, int] = {}  # tensor -> device pointer
        self.host: dict[str, np.ndarray] = {}  # tensor -> pinned bytes (uint8 view)
        try:
            for tensor, size in self.sizes.items():
                self.device[tensor] = int(cuda_call(cudart.cudaMalloc(size)))
                pinned = cuda_call(cudart.cudaMallocHost(size))
                self.host[tensor] = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(pinned))
        except BaseException:
            self.close()
            raise

    def upload(self, tensor: str, array: np.ndarray) -> None:
        """Copy `array` into the tensor's pinned buffer and queue the host-to-device copy."""
        data = np.ascontiguousarray(array)
        if data.nbytes > self.sizes[tensor]:
            raise ValueError(f"{data.nbytes} bytes do not fit {tensor}'s {self.sizes[tensor]}")
        self.host[tensor][: data.nbytes] = data.view(np.uint8).reshape(-1)
        cuda_call(self.cudart.cudaMemcpyAsync(
            self.device[tensor], self.host[tensor].ctypes.data, data.nbytes,
            self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))

    def download(self, tensor: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """Queue the device-to-host copy, wait for the stream, return a copy of the data
        (the pinned buffer is reused by the next batch)."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        cuda_call(self.cudart.cudaMemcpyAsync(
            self.host[tensor].ctypes.data, self.device[tensor], nbytes,
            self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        self.synchronize()
        return self.host[tensor][:nbytes].view(dtype).reshape(shape).copy()

    def synchronize(self) -> None:
        cuda_call(self.cudart.cudaStreamSynchronize(self.stream))

    def close(self) -> None:
        """Free everything; safe to call twice and after a failed allocation."""
        if self.stream is None:
            return
        self.synchronize()
        for pointer in self.device.values():
            cuda_call(self.cudart.cudaFree(pointer))
        for pinned in self.host.values():
            cuda_call(self.cudart.cudaFreeHost(pinned.ctypes.data))
        cuda_call(self.cudart.cudaStreamDestroy(self.stream))
        self.device, self.host, self.stream = {}, {}, None  # type: ignore[assignment]
