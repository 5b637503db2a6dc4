"""The TensorRT backend's memory path on a real GPU, without TensorRT: pinned host and device
buffers, async copies on a non-blocking stream, one stream per thread.

Needs cuda-python and a CUDA device only, so it runs on GPU machines where TensorRT's own
libraries are missing; skipped cleanly elsewhere. An on-device copy stands in for the engine.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pytest

from runtime.backends.gpu import gpu_count

if TYPE_CHECKING:
    from runtime.backends.cuda_buffers import StreamBuffers

COUNT, WHY = gpu_count()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(COUNT == 0, reason=f"needs a CUDA GPU: {WHY}")]

SIZES = {"input_ids": 64 * 512 * 8, "attention_mask": 64 * 512 * 8, "embeddings": 64 * 1024 * 4}


def engine_stand_in(buffers: StreamBuffers, rows: int, dims: int) -> None:
    """What execute_async_v3 would do, queued on the same stream: write the output tensor
    (here: the first rows*dims*4 bytes of input_ids, bit for bit)."""
    from runtime.backends.gpu import cuda_call

    cudart = buffers.cudart
    cuda_call(cudart.cudaMemcpyAsync(buffers.device["embeddings"], buffers.device["input_ids"],
                                     rows * dims * 4, cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                                     buffers.stream))


def round_trip(buffers: StreamBuffers, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, seq, dims = int(rng.integers(1, 65)), int(rng.integers(1, 513)), 64
    ids = rng.integers(0, 2**62, (rows, seq), dtype=np.int64)
    buffers.upload("input_ids", ids)
    buffers.upload("attention_mask", np.ones_like(ids))
    engine_stand_in(buffers, rows, min(dims, seq * 2))
    got = buffers.download("embeddings", (rows, min(dims, seq * 2)), np.float32)
    expected = ids.reshape(-1).view(np.float32)[: got.size].reshape(got.shape)
    return got, expected


def test_round_trip_through_the_device_is_bit_exact() -> None:
    from runtime.backends.cuda_buffers import StreamBuffers

    buffers = StreamBuffers(SIZES)
    try:
        for seed in range(20):
            got, expected = round_trip(buffers, seed)
            assert got.tobytes() == expected.tobytes()
    finally:
        buffers.close()
    buffers.close()  # twice is harmless


def test_one_stream_per_thread_results_stay_with_their_inputs() -> None:
    from runtime.backends.cuda_buffers import StreamBuffers

    slots = [StreamBuffers(SIZES) for _ in range(4)]

    def worker(index: int) -> int:
        for seed in range(index * 1000, index * 1000 + 50):
            got, expected = round_trip(slots[index], seed)
            assert got.tobytes() == expected.tobytes(), seed
        return index

    try:
        with ThreadPoolExecutor(len(slots)) as pool:
            assert sorted(pool.map(worker, range(len(slots)))) == [0, 1, 2, 3]
    finally:
        for slot in slots:
            slot.close()


def test_oversized_upload_is_refused_before_any_copy() -> None:
    from runtime.backends.cuda_buffers import StreamBuffers

    buffers = StreamBuffers({"input_ids": 16, "embeddings": 16})
    try:
        with pytest.raises(ValueError, match="do not fit input_ids"):
            buffers.upload("input_ids", np.zeros(3, dtype=np.int64))
    finally:
        buffers.close()


def test_cuda_errors_raise_appliance_error() -> None:
    from runtime.errors import ApplianceError
    from runtime.backends.gpu import cuda_call, import_cudart

    cudart = import_cudart()
    with pytest.raises(ApplianceError, match="CUDA error"):
        cuda_call(cudart.cudaMalloc(1 << 60))  # an exabyte: out of memory, not a crash
