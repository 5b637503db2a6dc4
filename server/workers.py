"""Several server processes on one port (`--workers N`), for hosts whose cores outrun one
event loop.

One process serves a request in a few hundred microseconds of event-loop time (HTTP,
parsing, batching, the answer's encoding: bench/serving.py measures it), so one loop tops
out at a few thousand requests/s; a GPU engine serves far more one-sentence requests than
that. Each worker is a whole server (its own engine sessions on the GPU, batcher, tokenizer
threads, metrics and readiness) accepting on one listening socket bound here before they
start, so the kernel hands each new connection to one of them. The parent only supervises:
SIGTERM/SIGINT are passed on (each worker drains as a lone server does), and when any
worker exits the others are stopped, so an appliance never runs half its workers. The exit
status is the first nonzero one, else 0.

Default (`--workers 0`, auto): 1, except on a GPU backend whose graph is small enough to
load once per worker (runtime.backends.ort_cuda.REPLICATE_MAX_BYTES) on a host with cores
to spare: one worker per WORKER_CORES cores, at most MAX_AUTO_WORKERS. On a CPU backend the
cores run the model, and a second loop only takes them from it.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING, Callable, Sequence

from runtime.errors import ApplianceError
from server.config import ServerConfig

if TYPE_CHECKING:
    from runtime.pipeline.embedder import Embedder

log = logging.getLogger("server")
WORKER_CORES = 4
MAX_AUTO_WORKERS = 4


def auto_workers(gpu: bool, graph_bytes: int, cores: int, replicate_max_bytes: int) -> int:
    """Worker processes for --workers 0 (pure, unit-tested)."""
    if not gpu or graph_bytes > replicate_max_bytes:
        return 1
    return max(1, min(MAX_AUTO_WORKERS, cores // WORKER_CORES))


def resolve_workers(requested: int, config: ServerConfig) -> int:
    """--workers as given, or auto_workers for this machine and artifact."""
    if requested > 0:
        return requested
    if config.more_models:  # each worker would hold every model: one process shares them
        return 1
    from runtime.pipeline.choose import choose
    from runtime.backends.ort_cuda import REPLICATE_MAX_BYTES, graph_bytes

    artifact = config.artifact
    try:
        name, _ = choose(artifact.manifest.tensorrt, config.runtime.backend)
    except ApplianceError:  # the backend cannot load: one process reports it in one line
        return 1
    size = sum(graph_bytes(artifact.onnx_path(t)) for t in artifact.towers)
    return auto_workers(name != "onnxruntime", size, len(os.sched_getaffinity(0)),
                        REPLICATE_MAX_BYTES)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (as uvicorn binds its own)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


Load = Callable[[ServerConfig], "Embedder | Sequence[Embedder]"]
# launch_server.serve: (args, config, embedder, sockets) -> None, until the server stops
Serve = Callable[..., None]


def _worker(args: argparse.Namespace, config: ServerConfig, sock: socket.socket,
            load: Load | None, serve: Serve) -> None:
    from server.lifecycle import configure_logging, load_or_exit

    configure_logging(args.log_level)
    serve(args, config, (load or load_or_exit)(config), sockets=[sock])


def run_workers(args: argparse.Namespace, config: ServerConfig, count: int, serve: Serve,
                load: Load | None = None) -> None:
    """`count` workers on one socket until they stop; exits with the first failure.
    `serve` runs one worker's server (launch_server.serve); `load` (picklable, as `serve`)
    opens each worker's embedder (default: the artifact's own backend, exiting with one
    line if it cannot)."""
    sock = listen(config.host, config.port)
    context = multiprocessing.get_context("spawn")  # no threads or CUDA state inherited
    workers = [context.Process(target=_worker, args=(args, config, sock, load, serve),
                               name=f"worker-{i}") for i in range(count)]
    for worker in workers:
        worker.start()
    log.info("serving on %s:%d with %d worker processes", config.host, config.port, count)

    stopping: list[int] = []

    def forward(sig: int, _: FrameType | None) -> None:
        stopping.append(sig)
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = _supervise(workers, stopping)
    sock.close()
    if status:
        raise SystemExit(status)


def _supervise(workers: Sequence[BaseProcess], stopping: list[int]) -> int:
    """Wait for the first worker to exit; unless a stop was asked for (`stopping`: the
    signals passed on), stop the rest: a worker died. Returns the first failure's status
    (a worker ended by a signal counts as 1, unless it is the stop's own), else 0."""
    from multiprocessing.connection import wait

    wait([w.sentinel for w in workers])
    if not stopping:
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, signal.SIGTERM)  # each drains, as a lone server does
    for worker in workers:
        worker.join()
    codes = [w.exitcode or 0 for w in workers]
    log.info("worker processes exited: %s", codes)
    failed = [c for c in codes if c > 0 or (c < 0 and -c not in stopping)]
    if not stopping and not failed:  # one stopped by itself, cleanly: still not a full set
        return 1
    return (failed[0] if failed[0] > 0 else 1) if failed else 0
