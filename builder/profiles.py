"""Optimisation profiles for a TensorRT engine, from the model spec and the batching limits.

Pure: the same inputs always give the same profiles, unit-tested without TensorRT.

- Buckets. One profile covers 1..max_len when max_len is short. Past SHORT tokens,
  sequences split into short (..SHORT) and long (..max_len) profiles, plus a medium one at
  the geometric middle when max_len is 16x SHORT or more: a kernel timed for 8k tokens is a
  poor fit for a 40-token query, and real traffic is mostly short.
- Batch. The batcher caps a batch at max_batch_size rows and max_batch_tokens padded tokens,
  so a profile whose rows are at least `lo` tokens long never sees more than
  max_batch_tokens // lo rows: long profiles get small max batches (less device memory).
- opt. The sequence opt is the middle of the bucket, rounded up to a multiple of 8 (tensor
  core tiles): padded batch widths spread over the bucket and the middle is closest to all
  of them on average. The batch opt is what the token budget allows at that width: under
  load, when throughput matters, the batcher fills batches to the budget; at light load a
  small batch is bound by launch latency, not by which tactic was timed.
"""

from __future__ import annotations

import math

from models.spec import ModelSpec
from runtime.backends.trt_plan import Profile, ShapeRange

SHORT = 128
MEDIUM_SPAN = 16  # max_len / SHORT from which a medium bucket is added


def seq_edges(max_len: int) -> tuple[int, ...]:
    """Upper sequence bound of each profile, ascending; the last is max_len."""
    if max_len <= SHORT:
        return (max_len,)
    if max_len < SHORT * MEDIUM_SPAN:
        return (SHORT, max_len)
    medium = 2 ** round(math.log2(math.sqrt(SHORT * max_len)))
    return (SHORT, medium, max_len)


def _round_up(value: int, multiple: int, cap: int) -> int:
    return min(cap, -(-value // multiple) * multiple)


def plan_profiles(spec: ModelSpec, max_batch_size: int, max_batch_tokens: int) -> tuple[Profile, ...]:
    if max_batch_size < 1 or max_batch_tokens < 1:
        raise ValueError("max_batch_size and max_batch_tokens must be positive")
    edges = seq_edges(spec.max_len)
    names = {1: ("all",), 2: ("short", "long"), 3: ("short", "medium", "long")}[len(edges)]
    profiles = []
    lo = 1
    for name, hi in zip(names, edges):
        max_batch = max(1, min(max_batch_size, max_batch_tokens // lo))
        opt_seq = _round_up((lo + hi) // 2, 8, hi)
        opt_batch = max(1, min(max_batch, max_batch_tokens // opt_seq))
        shape = ShapeRange((1, lo), (opt_batch, opt_seq), (max_batch, hi))
        reason = (f"sequences {lo}..{hi}: opt length {opt_seq} is the bucket's middle "
                  f"(multiple of 8); opt batch {opt_batch} is what {max_batch_tokens} padded "
                  f"tokens allow at that length (the full batches seen under load)")
        profiles.append(Profile(name, tuple((k, shape) for k in spec.inputs), reason))
        lo = hi + 1
    return tuple(profiles)
