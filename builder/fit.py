"""Fit a TensorRT build to the GPU it is for, before anything is exported.

The budget is `--gpu-memory-gib`, else the memory of this machine's GPU, else (TensorRT for
RTX, which builds without one) RTX_DEFAULT_GIB; `--gpu-memory-gib 0` turns fitting off.
Within it:
- fp16/bf16 (attention fused): every profile's weights + CONTEXTS x activations must fit, or
  the build is refused in one line naming the profile and what to change (memory.check_budget);
- fp32 (TensorRT does not fuse it: each profile holds rows x heads x seq^2 float scores):
  each sequence bucket holds the rows that fit (memory.unfused_rows), and the artifact's
  maximum input is cut to the longest one row of which fits (memory.fit_max_len), said in
  the log and recorded in the manifest's spec (the server answers longer inputs with its
  usual 400, or truncates). A model's full long context needs fp16/bf16.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from builder import memory
from builder.compile import CompileOptions
from builder.profiles import SHORT
from builder.progress import say
from models.spec import ModelSpec
from runtime.artifact.manifest import BuildLimits
from runtime.backends.trt_plan import FLAVOURS


class FitError(RuntimeError):
    """The build cannot fit the GPU budget; the message is one line naming the fix."""


def budget_gib(given: float | None, backend: str) -> tuple[float, str]:
    """The budget in GiB and where it came from (for the log)."""
    if given is not None:
        return given, "--gpu-memory-gib" if given else "--gpu-memory-gib 0: no memory check"
    from runtime.backends.gpu import gpu_count, total_memory_gib

    if gpu_count()[0]:
        return total_memory_gib(), "this machine's GPU"
    if FLAVOURS[backend].builds_without_gpu:
        return memory.RTX_DEFAULT_GIB, ("TensorRT for RTX's default, the largest GeForce "
                                        "card; --gpu-memory-gib N for another")
    return 0.0, "no GPU visible: no memory check"


def cap_context(spec: ModelSpec, config: Mapping[str, Any], precision: str,
                room: int) -> ModelSpec:
    """The spec with max_len cut to what one row of unfused attention fits in `room` bytes."""
    rows_at = memory.unfused_rows(memory.tower_widths(config, "text", spec), precision, room)
    if rows_at is None:
        return spec
    cap = memory.fit_max_len(rows_at, spec.max_len)
    if cap == spec.max_len:
        return spec
    if cap < min(SHORT, spec.max_len):
        raise FitError(
            f"{precision}: one row of {min(SHORT, spec.max_len)} tokens does not fit the "
            f"{room * memory.CONTEXTS / memory.GIB:.1f} GiB left beside the weights (TensorRT "
            "does not fuse fp32 attention): build fp16/bf16 or raise --gpu-memory-gib")
    say(f"memory: {precision} attention is not fused by TensorRT (seq^2 scores per head), so "
        f"these plans take inputs of at most {cap} tokens (one row's scores fit "
        f"{room / memory.GIB:.1f} GiB per context); the model's {spec.max_len} needs fp16/bf16")
    return dataclasses.replace(spec, max_len=cap)


def fit(checkpoint: Path, spec: ModelSpec, opts: CompileOptions, precision: str,
        backend: str) -> tuple[ModelSpec, CompileOptions]:
    """The spec (max_len cut where fp32 attention needs it) and the options (budget and
    per-context room resolved) the build proceeds with; FitError when it cannot fit."""
    config = memory.read_config(checkpoint)
    weights = memory.checkpoint_weights(checkpoint, config, precision)
    budget, source = budget_gib(opts.gpu_memory_gib, backend)
    room = memory.room(budget, weights) if config else 0
    if budget:
        say(f"memory budget: {budget:g} GiB ({source})")
    spec = cap_context(spec, config, precision, room)
    limits = BuildLimits(opts.max_batch_size, opts.max_batch_tokens)
    needs = memory.needs(config, spec, limits, precision, room)
    top = max(needs, key=lambda n: n[0].activations)[0]
    say(f"memory: weights {weights / memory.GIB:.2f} GiB ({precision}); largest profile "
        f"{top.line()}; {memory.CONTEXTS} contexts: {top.total(weights) / memory.GIB:.1f} GiB")
    if budget:
        problem = memory.check_budget(needs, weights, precision, budget)
        if problem:
            raise FitError(problem)
    return spec, dataclasses.replace(opts, gpu_memory_gib=budget, context_room=room)
