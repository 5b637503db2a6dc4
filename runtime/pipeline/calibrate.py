"""A backend's fixed cost per call, measured at startup where the backend does not know it.

Batch planning (runtime/pipeline/batch_plan.py) weighs one more call against the padding a larger
batch carries, in tokens. A CPU call costs about 8 tokens (measured once, BENCHMARKS.md,
design; the ONNX Runtime CPU backend says so itself). A GPU's depends on the GPU, the
model and the engine (kernel launches against the device's speed: ~3,900 tokens for a
bge-base-shaped BERT on ONNX Runtime CUDA on an H200, from issue 26's figures), so it is
timed here once the warm-up has run: one row, half a batch and a full batch of the same
width, each a few times, the fastest of each kept, and a line fitted through them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from runtime.pipeline.batch_plan import fit_call_cost
from runtime.pipeline.batcher import BatchConfig, RunFn
from runtime.settings import DEFAULT_BATCH_TOKENS

log = logging.getLogger(__name__)
PROBE_WIDTH = 32  # tokens per probe row: a sentence
REPEATS = 5
clock = time.perf_counter  # the tests drive it from a backend that keeps its own time


def probe_sizes(cfg: BatchConfig, width: int) -> tuple[int, ...]:
    """Rows per probe batch: one, half the largest, the largest the limits allow."""
    budget = cfg.max_batch_tokens or DEFAULT_BATCH_TOKENS
    big = max(2, min(cfg.max_batch_size, budget // width))
    return tuple(sorted({1, max(2, big // 2), big}))


def measure_call_cost(run: RunFn, probe_row: Callable[[int], Any], cfg: BatchConfig,
                      max_len: int) -> int:
    """The call cost in tokens for `run` (a tower's runner; blocking: call off the loop)."""
    width = max(1, min(PROBE_WIDTH, max_len))
    sizes = probe_sizes(cfg, width)
    run([probe_row(width)] * sizes[-1])  # the largest shape's buffers are allocated now
    best = {n: float("inf") for n in sizes}
    for _ in range(REPEATS):
        for n in sizes:
            rows = [probe_row(width)] * n
            started = clock()
            run(rows)
            best[n] = min(best[n], clock() - started)
    cost = fit_call_cost([(n * width, s) for n, s in best.items()],
                         cfg.max_batch_tokens or DEFAULT_BATCH_TOKENS)
    log.info("backend call cost measured: %d padded tokens (%s)", cost,
             ", ".join(f"{n}x{width} tokens {s * 1e3:.2f} ms" for n, s in best.items()))
    return cost
