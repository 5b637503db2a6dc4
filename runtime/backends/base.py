"""The Backend contract: padded token batches in, pooled vectors out.

Two implementations: runtime.backends.ort (any machine) and runtime.backends.trt (NVIDIA GPU).
The batcher and server only see this protocol, never the libraries behind it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class BackendLimits:
    max_batch_size: int  # rows per call
    max_seq_len: int  # tokens per row
    # Sequence-length boundaries the backend runs best at (TensorRT profiles); the batcher
    # keeps a batch's rows inside one bucket. Empty: any length mixes.
    seq_buckets: tuple[int, ...] = ()
    concurrency: int = 1  # batches the backend runs at once (TensorRT: execution contexts)
    # Padded tokens per call the backend runs fastest at; 0: no preference (the batcher's
    # default budget). Used when --max-batch-tokens is not given.
    max_batch_tokens: int = 0
    # A call's fixed cost in padded tokens (runtime/pipeline/batch_plan.py); 0: not known, measured
    # at startup (runtime/pipeline/calibrate.py): GPUs, whose cost depends on the device and model.
    call_cost_tokens: int = 0


class Backend(Protocol):
    name: str
    limits: BackendLimits

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Named graph inputs for one batch -> float32 (b, dims) vectors.

        Text towers take int64 (b, s) `input_ids` and `attention_mask`, right-padded;
        other towers (images) name their own inputs in the manifest.
        """
        ...

    def close(self) -> None: ...


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token rows to the longest: (input_ids, attention_mask), both int64.

    Vectorised (one flattening pass, one masked write): on a GPU's batch of hundreds of
    rows this runs on the host for every call, so no numpy call per row."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max())
    mask = np.arange(width, dtype=np.int64)[None, :] < lengths[:, None]
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    ids[mask] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                            count=int(lengths.sum()))
    return ids, mask.astype(np.int64)
