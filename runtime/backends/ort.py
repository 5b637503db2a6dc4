"""ONNX Runtime backend on the CPU execution provider (always: `--backend onnxruntime` serves
on CPU even where onnxruntime-gpu and a GPU are present; runtime.backends.ort_cuda is the
GPU path).

Threads (`threads=0`, the default, on a CPU with several cores): under load
single-threaded batches run side by side, two per core: a multi-threaded batch stalls on
its own threads whenever the event loop takes a core, and with two per core a core has a
batch to run while the rows of another are answered and replaced (BENCHMARKS.md, design).
A small batch that runs alone (an idle server's single request) uses every core, for the
lowest latency. That needs a second session holding a second copy of the weights, so it is
made for graphs under DUAL_SESSION_MAX_BYTES only. One-thread batches are kept small
(one_thread_batch_tokens): a batch's activations then stay near the core's own caches.
`threads=N` gives one session of N threads (`threads=1`: one-thread batches, kept small).

The graph runs as exported, with ORT_ENABLE_ALL: on all-MiniLM (AVX2 Xeon, ORT 1.32, one
thread, CPU time per batch) onnxruntime.transformers.optimizer's offline fusions
(Attention, SkipLayerNormalization, EmbedLayerNormalization) ran 9-16% slower than ORT's
own online fusions, and no session option tried (no memory pattern, no arena, denormals
as zero, EXTENDED level) was faster than the defaults.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from runtime.backends.base import BackendLimits
from runtime.errors import ArtifactError
from runtime.settings import CPU_CALL_COST_TOKENS

log = logging.getLogger(__name__)
DUAL_SESSION_MAX_BYTES = 1 << 30
SOLO_MAX_TOKENS = 256  # padded tokens of a lone batch that gets every core
IN_FLIGHT_PER_CORE = 2
# Padded tokens x model width per one-thread batch: its activations stay near the core's
# own caches (the sizes measured best are in BENCHMARKS.md, design).
BATCH_TOKEN_WIDTH = 196_608
MIN_BATCH_TOKENS = 64
# ONNX Runtime's CPU arena keeps, for the session's life, the most memory any one run took:
# eager attention holds rows x heads x seq^2 scores, so one long batch (a 32k-token row: 16
# heads x 32768^2 fp32 = 64 GiB) would stay allocated. A run past this many rows x seq^2
# cells (64 rows of 512 tokens: ~1 GiB of scores at 16 heads) hands its arena memory back
# when it ends (RunOptions memory.enable_memory_arena_shrinkage); smaller runs reuse it.
ARENA_KEEP_CELLS = 64 * 512 * 512
SHRINK_KEY = "memory.enable_memory_arena_shrinkage"


def arena_run_options(shape: tuple[int, ...], arenas: str) -> Any:
    """None for a run the arena may keep; RunOptions that shrink `arenas` ("cpu:0",
    "gpu:0") after a run of more than ARENA_KEEP_CELLS attention cells (rows x seq^2 of a
    token batch's (rows, seq) shape)."""
    import onnxruntime as ort

    rows, seq = shape[0], shape[-1]
    if len(shape) != 2 or rows * seq * seq <= ARENA_KEEP_CELLS:
        return None
    options = ort.RunOptions()
    options.add_run_config_entry(SHRINK_KEY, arenas)
    return options


def one_thread_batch_tokens(width: int) -> int:
    """The padded-token budget of a one-thread batch for a model `width` wide; 0: none."""
    return max(MIN_BATCH_TOKENS, BATCH_TOKEN_WIDTH // width) if width > 0 else 0


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1  # one graph path at a time; inter-op threads only contend
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def _graph_bytes(onnx_path: Path) -> int:
    return sum(p.stat().st_size for p in onnx_path.parent.glob(onnx_path.name + "*"))


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, limits: BackendLimits, threads: int = 0,
                 width: int = 0, cores: int = 0):
        import onnxruntime as ort

        onnx_path = Path(onnx_path)
        # `cores`: this model's share when several share the CPU (0: every core we may use)
        cores = min(cores, len(os.sched_getaffinity(0))) or len(os.sched_getaffinity(0))
        self.providers = ["CPUExecutionProvider"]
        adaptive = (not threads and cores > 1
                    and _graph_bytes(onnx_path) <= DUAL_SESSION_MAX_BYTES)
        # A one-thread session's batches are kept small too (`--threads 1`, the bulk command).
        one_thread = threads == 1
        self._shared = self._session(onnx_path, 1 if adaptive else threads or cores)
        self._solo = self._session(onnx_path, cores) if adaptive else self._shared
        self._running = 0
        self._lock = threading.Lock()
        self.input_names = [i.name for i in self._shared.get_inputs()]
        # Twice as many batches in flight as cores: while one batch's rows are in transit
        # (answers written, the next requests parsed), another batch keeps the core busy.
        in_flight = IN_FLIGHT_PER_CORE * cores if adaptive else max(1, limits.concurrency)
        self.limits = BackendLimits(
            limits.max_batch_size, limits.max_seq_len, limits.seq_buckets,
            concurrency=in_flight,
            max_batch_tokens=one_thread_batch_tokens(width) if adaptive or one_thread else 0,
            call_cost_tokens=CPU_CALL_COST_TOKENS)
        log.info("onnxruntime %s, providers %s, %s", ort.__version__, self.providers,
                 f"{in_flight} one-thread batches at once (up to "
                 f"{self.limits.max_batch_tokens or 'any number of'} padded tokens), "
                 f"{cores} threads for a small lone one"
                 if adaptive
                 else f"{threads or cores} threads")

    def _session(self, onnx_path: Path, threads: int) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(onnx_path), sess_options=_session_options(threads),
                                        providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"ONNX Runtime could not load {onnx_path}: {exc}") from exc

    def run_options(self, shape: tuple[int, ...]) -> Any:
        if self.input_names[0] != "input_ids":  # image towers: capped by their own limits
            return None
        return arena_run_options(shape, "cpu:0")

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        ids = feeds[self.input_names[0]]
        with self._lock:
            self._running += 1
            alone = self._running == 1 and ids.size <= SOLO_MAX_TOKENS
        session = self._solo if alone else self._shared
        try:
            (vectors,) = session.run(None, {k: feeds[k] for k in self.input_names},
                                     self.run_options(tuple(ids.shape)))
        finally:
            with self._lock:
                self._running -= 1
        return np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        self._solo = self._shared = None
