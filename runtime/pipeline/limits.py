"""Batch limits, settled once per tower: the server's flags, the backend's preferences and
the builder's record (manifest BuildLimits), in that order, never past a TensorRT plan.

Pure: no backend is loaded here; the caller passes what the loaded backend reports.

- Rows per batch: --max-batch-size, else the backend's (a plan's largest profile batch),
  else DEFAULT_BATCH_SIZE.
- Padded tokens per batch: --max-batch-tokens, else the backend's preference (one-thread
  ONNX Runtime batches sized to the model's width), else the budget the plans were built
  for, else DEFAULT_BATCH_TOKENS. An image tower that packs its images into one sequence
  (Qwen2-VL: no fixed image size) takes one largest image's patches instead: small images
  share a batch, large ones run alone, and the attention over the packed sequence stays
  bounded.
- A TensorRT plan bounds both: its profiles were built for BuildLimits, and a larger batch
  would be split into several calls (or not fit at all).
- Batches in flight: the larger of --batches-in-flight and the backend's own count (TensorRT
  contexts, ONNX Runtime's two per core); sequence buckets: the backend's (plan profiles).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.spec import ModelSpec
from runtime.backends.base import BackendLimits
from runtime.pipeline.batcher import BatchConfig
from runtime.artifact.manifest import BuildLimits
from runtime.settings import (CPU_CALL_COST_TOKENS, DEFAULT_BATCH_SIZE, DEFAULT_BATCH_TOKENS,
                              DEFAULT_MAX_QUEUE, DEFAULT_MAX_WAIT_MS)


@dataclass(frozen=True)
class BatchFlags:
    """The server's batching flags as given: None where the user did not set one."""

    max_batch_size: int | None = None
    max_batch_tokens: int | None = None
    concurrency: int | None = None  # --batches-in-flight
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    max_queue_rows: int = DEFAULT_MAX_QUEUE
    max_queue_wait_ms: float = 0.0
    # --call-cost-tokens: a backend call's fixed cost in padded tokens
    # (runtime/pipeline/batch_plan.py); None: the backend's own figure, else measured at startup;
    # 0: fill batches greedily.
    call_cost_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_batch_tokens", "concurrency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.call_cost_tokens is not None and self.call_cost_tokens < 0:
            raise ValueError(f"call_cost_tokens must be at least 0, got {self.call_cost_tokens}")


def packs_images(tower: str, spec: ModelSpec) -> bool:
    """An image tower whose images are packed into one sequence (no fixed image size)."""
    return tower == "image" and spec.vision is not None and not spec.vision.image_size


def resolve_batch(flags: BatchFlags, backend: BackendLimits, built: BuildLimits | None,
                  tower: str, spec: ModelSpec) -> BatchConfig:
    """The batcher's limits for one tower.

    `built`: the manifest's BuildLimits when a TensorRT plan serves this tower (it bounds
    the batch), None for ONNX Runtime (dynamic graphs: nothing is bounded).
    """
    size = flags.max_batch_size or backend.max_batch_size or DEFAULT_BATCH_SIZE
    if packs_images(tower, spec):
        assert spec.vision is not None
        tokens = spec.vision.max_patches
    else:
        tokens = (flags.max_batch_tokens or backend.max_batch_tokens
                  or (built.max_batch_tokens if built else 0) or DEFAULT_BATCH_TOKENS)
    if built is not None and not packs_images(tower, spec):  # patches bound those batches
        size = min(size, built.max_batch_size, backend.max_batch_size or size)
        tokens = min(tokens, built.max_batch_tokens)
    return BatchConfig(max_batch_tokens=tokens, max_batch_size=size,
                       max_wait_ms=flags.max_wait_ms, max_queue_rows=flags.max_queue_rows,
                       concurrency=max(flags.concurrency or 1, backend.concurrency),
                       seq_buckets=backend.seq_buckets,
                       max_queue_wait_ms=flags.max_queue_wait_ms,
                       call_cost_tokens=call_cost(flags, backend))


# Planning's call cost until a backend that does not know its own has been measured.
PROVISIONAL_CALL_COST = CPU_CALL_COST_TOKENS


def call_cost(flags: BatchFlags, backend: BackendLimits) -> int:
    """--call-cost-tokens, else the backend's figure, else PROVISIONAL_CALL_COST until the
    startup measurement (needs_call_cost) replaces it."""
    if flags.call_cost_tokens is not None:
        return flags.call_cost_tokens
    return backend.call_cost_tokens or PROVISIONAL_CALL_COST


def needs_call_cost(flags: BatchFlags, backend: BackendLimits) -> bool:
    """Whether the tower's call cost is measured at startup (runtime/pipeline/calibrate.py)."""
    return flags.call_cost_tokens is None and not backend.call_cost_tokens


def plan_bound(built: BuildLimits, backend_name: str) -> BuildLimits | None:
    """`built` when the backend runs TensorRT plans (they bound the batch), else None."""
    return built if backend_name.startswith("tensorrt") else None
