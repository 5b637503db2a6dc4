"""Optimisation profiles for a TensorRT engine, from a graph's named input shapes, the model
spec and the batching limits.

Pure: the same inputs always give the same profiles, unit-tested without TensorRT. Every
dynamic axis is named in the manifest's Graph.inputs ("batch", "sequence", "image_tokens",
"patches"); a profile gives each axis name one (min, opt, max) and every input's range is
built from its axes, so sizes agree across the inputs of a graph (position_ids (3, batch,
sequence) and input_ids (batch, sequence) share batch and sequence).

- Sequence graphs (text towers, GME's language graph): geometric buckets. A TensorRT
  profile is a box: the engine must hold max rows x max sequence (and, unfused, max rows x
  heads x max sequence^2 attention scores), whatever the batcher sends. One profile covers
  1..SHORT; past it each bucket doubles (SHORT+1..2 SHORT, ..4 SHORT, ...), the last ends
  at max_len (a last bucket shorter than half its neighbour is merged into it, so no bucket
  spans more than 2x). A bucket's rows are at least `lo` tokens, so the batcher (at most
  max_batch_tokens padded tokens per batch, every row in one bucket) never sends more than
  max_batch_tokens // lo of them: that is the bucket's max batch, and its box
  (max rows x hi) stays within 2x the token budget (hi <= 2 lo), or one row of hi tokens
  where a single row is longer than the budget.
- opt. The sequence opt is the middle of the bucket, rounded up to a multiple of 8 (tensor
  core tiles): padded batch widths spread over the bucket and the middle is closest to all
  of them on average. The batch opt is what the token budget allows at that width: under
  load, when throughput matters, the batcher fills batches to the budget.
- image_tokens (GME language graph): the rows of image embeddings spliced into a batch,
  0 (text-only batches) up to every token of the batch.
- Image graphs: CLIP's (batch, 3, H, W) takes up to max_batch_size images, and no more
  than the token budget holds (each image is max_patches tokens; the runtime splits larger
  batches); GME's vision graph takes packed patches, 1..spec.vision.max_patches (the
  batcher's cap per batch).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from models.spec import ModelSpec
from runtime.backends.trt_plan import Profile, ShapeRange
from runtime.artifact.manifest import BuildLimits

SHORT = 128
AxisRanges = dict[str, tuple[int, int, int]]  # axis name -> (min, opt, max)
RowsAt = Callable[[int], int]  # tokens per row -> rows that fit (builder/memory.py)


def seq_edges(max_len: int) -> tuple[int, ...]:
    """Upper sequence bound of each profile, ascending: SHORT, then doubling, then max_len;
    every bucket past the first spans at most 2x (its hi <= 2 x (its lo - 1))."""
    edges = [min(SHORT, max_len)]
    while edges[-1] < max_len:
        edges.append(min(2 * edges[-1], max_len))
    return tuple(edges)


def bucket_rows(limits: BuildLimits, lo: int) -> int:
    """Most rows the batcher puts in one batch of rows at least `lo` tokens long."""
    return max(1, min(limits.max_batch_size, limits.max_batch_tokens // lo))


def images_per_batch(spec: ModelSpec, limits: BuildLimits) -> int:
    """CLIP-style image graphs: images per engine run, within the token budget."""
    tokens = spec.vision.max_patches if spec.vision is not None else 1
    return max(1, min(limits.max_batch_size, limits.max_batch_tokens // tokens))


def _round_up(value: int, multiple: int, cap: int) -> int:
    return min(cap, -(-value // multiple) * multiple)


def _check(limits: BuildLimits) -> None:
    if limits.max_batch_size < 1 or limits.max_batch_tokens < 1:
        raise ValueError("max_batch_size and max_batch_tokens must be positive")


def _sequence_axes(spec: ModelSpec, limits: BuildLimits, axes: set[str],
                   rows_at: RowsAt | None) -> list[tuple[str, AxisRanges, str]]:
    """(name, axis ranges, reason) per sequence bucket."""
    edges = seq_edges(spec.max_len)
    budget = limits.max_batch_tokens
    out, lo = [], 1
    for hi in edges:
        name = "all" if len(edges) == 1 else f"seq{hi}"
        max_batch = bucket_rows(limits, lo)
        if rows_at is not None and rows_at(hi) < max_batch:  # unfused attention: memory binds
            max_batch = max(1, rows_at(hi))
        opt_seq = _round_up((lo + hi) // 2, 8, hi)
        opt_batch = max(1, min(max_batch, budget // opt_seq))
        ranges: AxisRanges = {"batch": (1, opt_batch, max_batch), "sequence": (lo, opt_seq, hi)}
        reason = (f"sequences {lo}..{hi}, at most {max_batch} rows (rows of >= {lo} tokens "
                  f"in {budget} padded tokens, max batch size {limits.max_batch_size}"
                  + (", and what the memory budget holds of unfused attention's scores"
                     if rows_at is not None else "") + "): a box "
                  f"of {max_batch * hi} tokens; opt length {opt_seq} is the bucket's middle "
                  f"(multiple of 8); opt batch {opt_batch} is what {budget} padded "
                  f"tokens allow at that length (the full batches seen under load)")
        if "image_tokens" in axes:  # 0: a text-only batch splices no image rows
            top = min(budget, max_batch * hi)
            ranges["image_tokens"] = (0, min(top, _image_tokens(spec)), top)
            reason += "; image rows 0..every token of the batch, opt one image's tokens"
        out.append((name, ranges, reason))
        lo = hi + 1
    return out


def _image_tokens(spec: ModelSpec) -> int:
    """Image tokens of the largest image (its patches merged)."""
    if spec.vision is None:
        return 1
    return max(1, spec.vision.max_patches // spec.vision.spatial_merge_size ** 2)


def _image_axes(spec: ModelSpec, limits: BuildLimits, axes: set[str],
                rows_at: RowsAt | None = None) -> list[tuple[str, AxisRanges, str]]:
    if "patches" in axes:
        if spec.vision is None:
            raise ValueError("a graph over image patches needs the spec's vision facts")
        # The merger folds merge^2 patches into one token: every size is a multiple of it.
        unit = spec.vision.spatial_merge_size ** 2
        top = spec.vision.max_patches // unit * unit
        opt = _round_up(top // 2, math.lcm(8, unit), top)
        return [("all", {"patches": (unit, opt, top)},
                 f"packed patches {unit}..{top} in steps of {unit} (merged per {unit}; the "
                 f"batcher's cap per batch is the largest image's patches); opt {opt}, the "
                 "middle")]
    top = images_per_batch(spec, limits)
    return [("all", {"batch": (1, top, top)},
             f"images 1..{top} per run (max_batch_size, and no more than "
             f"{limits.max_batch_tokens} tokens); opt {top}: full batches under load")]


def _shape(dims: Sequence[int | str], ranges: AxisRanges) -> ShapeRange:
    try:
        picked = [ranges[d] if isinstance(d, str) else (d, d, d) for d in dims]
    except KeyError as exc:
        raise ValueError(f"no profile rule for the dynamic axis {exc.args[0]!r}") from None
    return ShapeRange(*(tuple(axis[k] for axis in picked) for k in range(3)))


def graph_profiles(inputs: Mapping[str, Sequence[int | str]], spec: ModelSpec,
                   limits: BuildLimits, rows_at: RowsAt | None = None) -> tuple[Profile, ...]:
    """Profiles for one graph, from its inputs in graph order (name -> shape, dynamic axes
    named), covering every input. `rows_at` (tokens per row -> rows that fit the memory
    budget; builder/memory.py unfused_rows) further bounds each sequence bucket's rows
    where attention is not fused; the spec's max_len must already fit one row."""
    _check(limits)
    axes = {d for shape in inputs.values() for d in shape if isinstance(d, str)}
    rule = _sequence_axes if "sequence" in axes else _image_axes
    return tuple(Profile(name, tuple((k, _shape(dims, ranges)) for k, dims in inputs.items()),
                         reason)
                 for name, ranges, reason in rule(spec, limits, axes, rows_at))


def plan_profiles(spec: ModelSpec, max_batch_size: int,
                  max_batch_tokens: int) -> tuple[Profile, ...]:
    """A text graph's profiles: every spec input is (batch, sequence)."""
    inputs = {name: ("batch", "sequence") for name in spec.inputs}
    return graph_profiles(inputs, spec, BuildLimits(max_batch_size, max_batch_tokens))
