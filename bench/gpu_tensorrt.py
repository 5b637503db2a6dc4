"""TensorRT throughput per profile, batch sweep: run on a GPU machine.

    python -m bench.gpu_tensorrt --artifact DIR [--contexts 2] [--seconds 3]

Builds nothing: point it at an artifact built with `--backend tensorrt`. For each profile it
runs batches of sizes 1, 2, 4, ... up to the profile's max at the profile's opt and max
lengths, and prints tokens/s (padded tokens) and batch latency, serial and with all contexts.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def sweep_sizes(max_batch: int) -> list[int]:
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    return sizes + [max_batch]


def run(backend, batch: int, seq: int, seconds: float, workers: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    ids = np.random.default_rng(0).integers(1000, 2000, (batch, seq), dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    backend.embed(feeds)  # warm: profile switch, first launch
    done, start = 0, time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        while time.perf_counter() - start < seconds:
            list(pool.map(lambda _: backend.embed(feeds), range(workers)))
            done += workers
    elapsed = time.perf_counter() - start
    return done * batch * seq / elapsed, elapsed / done * workers * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--contexts", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    from runtime.artifact import Artifact
    from runtime.backends.trt import TensorRtBackend

    backend = TensorRtBackend(Artifact.open(args.artifact), "text", args.contexts)
    print(f"{'profile':8} {'seq':>6} {'batch':>6} {'ctx':>4} {'tokens/s':>12} {'ms/batch':>9}")
    try:
        for profile in backend.profiles:
            for seq in sorted({profile.first.opt[1], profile.max_seq}):
                for batch in sweep_sizes(profile.max_batch):
                    for workers in sorted({1, args.contexts}):
                        tps, ms = run(backend, batch, seq, args.seconds, workers)
                        print(f"{profile.name:8} {seq:6} {batch:6} {workers:4} {tps:12.0f} {ms:9.2f}")
    finally:
        backend.close()


if __name__ == "__main__":
    main()
