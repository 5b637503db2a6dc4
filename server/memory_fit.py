"""Do the served models fit? Checked at startup, after the artifacts are built and before any
model loads (issue 29): an appliance whose models cannot all hold their largest batches at
once refuses to start with one line, instead of failing at the first big batch.

Each model needs the files its backend loads (TensorRT plans; ONNX graphs with their
external weights, once per session that holds a copy) plus the activations of its largest
batch, times the batches it runs at once:
- TensorRT: per execution context (`--trt-contexts`), TensorRT's own activation figure from
  the build log where the manifest records it, else the builder's estimate of the largest
  profile (builder/memory.py, recorded per profile).
- ONNX Runtime: an estimate from the batch's padded-token budget, the builder's fp32 formula
  (runtime/backends/activations.py) for BERT-shaped widths (intermediate = 4 hidden, heads =
  width / HEAD_WIDTH) with the eager attention's scores, with its batches in flight as the
  backend plans them (runtime/backends/ort.py, ort_cuda.py).
The budget: the GPU's free memory for GPU backends, MemAvailable (/proc/meminfo) for the
CPU, or --memory-budget-gib (a container's share, a GPU shared with other processes).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from runtime.backends.activations import activation_bytes as formula
from runtime.backends.ort import (DUAL_SESSION_MAX_BYTES, IN_FLIGHT_PER_CORE,
                                  one_thread_batch_tokens)
from runtime.backends.ort_cuda import default_sessions, graph_bytes
from runtime.backends.trt_plan import GraphPlan
from runtime.errors import ApplianceError, ConfigError
from runtime.pipeline.choose import choose
from runtime.settings import DEFAULT_BATCH_TOKENS
from server.config import ServerConfig

log = logging.getLogger("server")
GIB = 1 << 30
HEAD_WIDTH = 64  # the usual attention head width: heads = width / 64
CPU, GPU = "RAM", "GPU memory"


@dataclass(frozen=True)
class Need:
    model: str
    device: str  # CPU or GPU
    weights: int  # bytes of the files its backend loads, every copy
    activations: int  # bytes of its largest batches, as many as run at once

    @property
    def total(self) -> int:
        return self.weights + self.activations


def activation_bytes(tokens: int, seq: int, width: int) -> int:
    """One fp32 batch of `tokens` padded tokens in rows of `seq` on a model `width` wide,
    BERT-shaped (intermediate 4 x width, heads of HEAD_WIDTH), attention unfused (ONNX
    Runtime's eager graph): the builder's formula (runtime/backends/activations.py)."""
    return formula(tokens, seq, width, 4 * width, max(1, width // HEAD_WIDTH), 4, fused=False)


def refusal(needs: Sequence[Need], budgets: Mapping[str, int]) -> str | None:
    """The one line refusing the start, or None when every device's models fit its budget
    (a device without a budget is not checked)."""
    for device, budget in budgets.items():
        mine = [n for n in needs if n.device == device]
        total = sum(n.total for n in mine)
        if mine and total > budget:
            parts = ", ".join(f"{n.model} {n.total / GIB:.2f} GiB (weights "
                              f"{n.weights / GIB:.2f} + largest batches "
                              f"{n.activations / GIB:.2f})" for n in mine)
            return (f"the models need {total / GIB:.2f} GiB of {device} but "
                    f"{budget / GIB:.2f} GiB is available ({parts}); serve fewer models, "
                    "lower --max-batch-tokens / --max-batch-size or the batches in flight, "
                    "or set --memory-budget-gib")
    return None


def _trt_need(config: ServerConfig, plans: Mapping[str, GraphPlan]) -> Need:
    path = config.artifact.path
    weights = sum((path / plan.file).stat().st_size for plan in plans.values())
    per_context = sum(plan.tensorrt_memory.get("activation_bytes")
                      or max(plan.memory_bytes.values(), default=0) for plan in plans.values())
    return Need(config.served_model_name, GPU, weights,
                config.runtime.trt_contexts * per_context)


def _ort_need(config: ServerConfig, on_gpu: bool) -> Need:
    spec, rt, flags = config.artifact.spec, config.runtime, config.runtime.batch
    weights = activations = 0
    for tower in config.artifact.towers:
        size = graph_bytes(config.artifact.onnx_path(tower))
        if on_gpu:  # one session per batch in flight, each with its own weights
            copies = in_flight = flags.concurrency or default_sessions(size)
            tokens = flags.max_batch_tokens or DEFAULT_BATCH_TOKENS
        elif not rt.threads and _cores(rt.cores) > 1 and size <= DUAL_SESSION_MAX_BYTES:
            copies, in_flight = 2, IN_FLIGHT_PER_CORE * _cores(rt.cores)  # adaptive
            tokens = flags.max_batch_tokens or one_thread_batch_tokens(spec.width)
        else:
            copies, in_flight = 1, flags.concurrency or 1
            tokens = flags.max_batch_tokens or DEFAULT_BATCH_TOKENS
        tokens = tokens or DEFAULT_BATCH_TOKENS
        weights += copies * size
        activations += in_flight * activation_bytes(tokens, min(tokens, spec.max_len),
                                                    spec.width)
    return Need(config.served_model_name, GPU if on_gpu else CPU, weights, activations)


def _cores(share: int) -> int:
    return share or len(os.sched_getaffinity(0))


def need_of(config: ServerConfig) -> Need:
    """What one model needs, on the backend it will load (the launcher's choice)."""
    record = config.artifact.manifest.tensorrt
    backend, _ = choose(record, config.runtime.backend)
    if record is not None and backend.startswith("tensorrt"):
        return _trt_need(config, record.plans)
    return _ort_need(config, backend == "onnxruntime-cuda")


def measured_budgets(devices: set[str]) -> dict[str, int]:
    """What this machine has free now, for the devices the models use; one it cannot
    measure is left unchecked (logged)."""
    budgets = {}
    if CPU in devices:
        with open("/proc/meminfo") as info:
            fields = dict(line.split(":", 1) for line in info)
        budgets[CPU] = int(fields["MemAvailable"].split()[0]) * 1024
    if GPU in devices:
        from runtime.backends.gpu import free_memory

        try:
            budgets[GPU] = free_memory()
        except ApplianceError as exc:
            log.warning("GPU memory not checked: %s", exc)
    return budgets


def check(configs: Sequence[ServerConfig], budget_gib: float | None) -> None:
    """ConfigError (one line) when the models do not fit; logs each model's need."""
    needs = [need_of(c) for c in configs]
    for n in needs:
        log.info("memory: %s needs %.2f GiB of %s (weights %.2f, largest batches %.2f)",
                 n.model, n.total / GIB, n.device, n.weights / GIB, n.activations / GIB)
    devices = {n.device for n in needs}
    budgets = ({d: int(budget_gib * GIB) for d in devices} if budget_gib is not None
               else measured_budgets(devices))
    message = refusal(needs, budgets)
    if message:
        raise ConfigError(message)
