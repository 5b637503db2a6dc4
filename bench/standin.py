"""A stand-in engine: the server measured at GPU speed on a machine without a GPU.

Not part of the product. `StandIn` is a Backend that costs what a GPU engine costs and
nothing else: a fixed time per call spent on its own thread (kernel launches: calls on
several threads overlap), then time per padded token on one shared device (batches run
one at a time there, as on one GPU). Both are sleeps, so the GIL is free and the server's
own CPU is what the host measures. Defaults: issue 26's H200 figures for a bge-base-shaped
BERT fp16 on ONNX Runtime CUDA (batches of 64 sorted Lee-corpus rows, 477,901 tokens/s;
of 256, 967,291 tokens/s: a line through them gives 2.64 ms per call + 0.68 us per token).

Its output says what it was given, so the benchmark checks every answer against its own
input: dimension 0 holds the row's real tokens, dimension 1 the sum of its token ids.

    python -m bench.standin --model-path ARTIFACT [--call-ms 2.64 --token-us 0.68]
        [every flag of python -m server.launch_server]

serves the artifact's tokenizer and spec through the real server, with the stand-in in
place of the artifact's graph.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

from runtime.backends.base import BackendLimits

if TYPE_CHECKING:
    from runtime.pipeline.embedder import Embedder
    from server.config import ServerConfig

H200_CALL_MS = 2.64
H200_TOKEN_US = 0.68


@dataclass(frozen=True)
class StandInCost:
    call_ms: float = H200_CALL_MS  # per call, on the caller's thread (overlaps other calls)
    token_us: float = H200_TOKEN_US  # per padded token, on the one device (serial)

    def seconds(self, padded_tokens: int) -> float:
        """One call alone, start to end."""
        return self.call_ms / 1e3 + padded_tokens * self.token_us / 1e6


class Device:
    """The one device batches take turns on: a lock across threads and, given a path, across
    processes too (flock on a file each thread opens itself; server/workers.py's workers
    share one GPU)."""

    def __init__(self, path: str | None = None):
        self._path = path
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._path is None:
            with self._lock:
                yield
            return
        if not hasattr(self._local, "fd"):
            self._local.fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._local.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._local.fd, fcntl.LOCK_UN)


class StandIn:
    """A Backend (runtime/backends/base.py) that sleeps like a GPU engine."""

    name = "stand-in"

    def __init__(self, cost: StandInCost, dims: int, limits: BackendLimits,
                 device: Device | None = None):
        self.cost = cost
        self.dims = dims
        self.limits = limits
        self._device = device or Device()
        self.calls = 0
        self.padded_tokens = 0

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        time.sleep(self.cost.call_ms / 1e3)
        with self._device.held():
            time.sleep(ids.size * self.cost.token_us / 1e6)
            self.calls += 1
            self.padded_tokens += ids.size
        return signature(ids, mask, self.dims)

    def close(self) -> None:
        pass


def signature(ids: np.ndarray, mask: np.ndarray, dims: int) -> np.ndarray:
    """The stand-in's vector for each row: its real tokens and the sum of its ids."""
    out = np.zeros((ids.shape[0], dims), dtype=np.float32)
    out[:, 0] = mask.sum(axis=1)
    out[:, 1] = (ids * mask).sum(axis=1)
    return out


def expected(rows: Sequence[Sequence[int]], dims: int) -> np.ndarray:
    """signature() of token rows, computed without padding: what each answer must be."""
    out = np.zeros((len(rows), dims), dtype=np.float32)
    out[:, 0] = [len(r) for r in rows]
    out[:, 1] = [sum(r) for r in rows]
    return out


def ceiling(rows: Sequence[Sequence[int]], cost: StandInCost, batch_rows: int,
            in_flight: int, dims: int = 2) -> tuple[float, int]:
    """(seconds, real tokens) for the stand-in alone on `rows`, sorted by length, in batches
    of `batch_rows` with `in_flight` batches at once: the engine's own throughput, what a
    server of the same limits can at best deliver."""
    from concurrent.futures import ThreadPoolExecutor

    from runtime.backends.base import pad_batch

    ordered = sorted(rows, key=len)
    batches = [pad_batch(ordered[i:i + batch_rows]) for i in range(0, len(ordered), batch_rows)]
    engine = StandIn(cost, dims, BackendLimits(batch_rows, 1 << 20, concurrency=in_flight))
    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(lambda b: engine.embed({"input_ids": b[0], "attention_mask": b[1]}),
                      batches))
    return time.perf_counter() - started, sum(len(r) for r in rows)


def standin_embedder(cost: StandInCost, max_batch_size: int | None, in_flight: int | None,
                     device_path: str, config: "ServerConfig") -> "Embedder":
    """The artifact's pipeline with the stand-in in place of its graph, sized as ONNX
    Runtime CUDA sizes itself (runtime/pipeline/choose.py, ort_cuda.py)."""
    from runtime.pipeline.choose import GPU_BATCH_SIZE
    from runtime.backends.ort_cuda import DEFAULT_SESSIONS
    from runtime.pipeline.embedder import Embedder

    spec = config.artifact.spec
    limits = BackendLimits(max_batch_size or GPU_BATCH_SIZE, spec.max_len,
                           concurrency=in_flight or DEFAULT_SESSIONS)
    engine = StandIn(cost, spec.dims, limits, Device(device_path))
    return Embedder(config.artifact, config.runtime, {"text": engine})


def main(argv: list[str] | None = None) -> None:
    from server import launch_server
    from server.workers import run_workers

    parser = launch_server.parser()
    parser.prog = "python -m bench.standin"
    parser.add_argument("--call-ms", type=float, default=H200_CALL_MS,
                        help="stand-in: fixed time per call, overlapping across calls")
    parser.add_argument("--token-us", type=float, default=H200_TOKEN_US,
                        help="stand-in: time per padded token on the one device")
    args = parser.parse_args(argv)
    config = launch_server.configure(args)
    if config is None:
        return
    with tempfile.NamedTemporaryFile(prefix="standin-device-") as device:
        load = functools.partial(standin_embedder, StandInCost(args.call_ms, args.token_us),
                                 args.max_batch_size, args.batches_in_flight, device.name)
        if args.workers > 1:  # each worker its own stand-in engine, all on one device
            run_workers(args, config, args.workers, launch_server.serve, load)
        else:
            launch_server.serve(args, config, load(config))


if __name__ == "__main__":
    main(None)
