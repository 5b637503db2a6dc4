"""A batcher's per-row results, put back together per request (runtime/pipeline/batcher.py):
pooled vectors stack into one array; rows an adapter split into other shapes (a token
vector per token, bge-m3 and ColBERT; sparse weights, SPLADE) stay a list."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def place_rows(plan: Sequence[Sequence[int]], outputs: Sequence[Any], count: int) -> Any:
    """Planned batches' outputs -> the rows in input order: one array for pooled vectors,
    a list where the adapter split a batch into rows of differing shapes."""
    if all(isinstance(output, np.ndarray) for output in outputs):
        vectors = np.empty((count, *outputs[0].shape[1:]), dtype=outputs[0].dtype)
        for batch, output in zip(plan, outputs):
            vectors[list(batch)] = output
        return vectors
    placed: list[Any] = [None] * count
    for batch, output in zip(plan, outputs):
        for index, row in zip(batch, output):
            placed[index] = row
    return gather_rows(placed)


def gather_rows(rows: Sequence[Any]) -> Any:
    """One request's per-row results: an array when they are arrays of one shape (pooled
    vectors), else a list (per-token outputs of differing lengths, sparse rows)."""
    if not isinstance(rows[0], np.ndarray):  # sparse rows
        return list(rows)
    try:  # np.stack checks the shapes itself: no Python pass per row on the dense path
        return np.stack(rows)
    except ValueError:  # token vectors of differing lengths
        return list(rows)
