"""Pure helpers around a TensorRT plan: its optimisation profiles as manifest data, the
tightest profile for a batch, buffer sizing, and the manifest-vs-machine compatibility check.

No TensorRT here: the builder writes profiles through `Profile.to_dict`, the runtime reads
them back, and everything is unit-tested on machines without a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from runtime.errors import ApplianceError, ArtifactError

PLAN_NAME = "model.plan"
TIMING_CACHE_NAME = "timing.cache"


@dataclass(frozen=True)
class ShapeRange:
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ValueError(f"shape ranks differ: {self}")
        if any(not lo <= mid <= hi for lo, mid, hi in zip(self.min, self.opt, self.max)):
            raise ValueError(f"need min <= opt <= max per axis: {self}")


@dataclass(frozen=True)
class Profile:
    """One optimisation profile: every (batch, sequence) input shares one ShapeRange."""

    name: str  # "short", "medium", "long" or "all"
    shapes: tuple[tuple[str, ShapeRange], ...]  # (input name, range), in graph input order
    reason: str  # why `opt` is where it is, for the manifest's reader

    @property
    def first(self) -> ShapeRange:
        return self.shapes[0][1]

    @property
    def max_batch(self) -> int:
        return self.first.max[0]

    @property
    def min_seq(self) -> int:
        return self.first.min[1]

    @property
    def max_seq(self) -> int:
        return self.first.max[1]

    def fits(self, seq: int) -> bool:
        return self.min_seq <= seq <= self.max_seq

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason,
                "shapes": {k: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max)}
                           for k, r in self.shapes}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Profile":
        shapes = tuple((k, ShapeRange(tuple(r["min"]), tuple(r["opt"]), tuple(r["max"])))
                       for k, r in data["shapes"].items())
        return cls(str(data["name"]), shapes, str(data.get("reason", "")))


def choose_profile(profiles: Sequence[Profile], seq: int) -> int:
    """Index of the tightest profile for a batch padded to `seq`: the smallest max sequence
    that holds it (kernels tuned nearest to its shape). Batches over a profile's max batch
    are split by the caller (split_rows), so only the sequence length decides."""
    fitting = [i for i, p in enumerate(profiles) if p.fits(seq)]
    if not fitting:
        spans = ", ".join(f"{p.name} {p.min_seq}..{p.max_seq}" for p in profiles)
        raise ApplianceError(f"no TensorRT profile takes sequence length {seq} ({spans})")
    return min(fitting, key=lambda i: (profiles[i].max_seq, profiles[i].max_batch))


def seq_buckets(profiles: Sequence[Profile]) -> tuple[int, ...]:
    """Bucket edges for the batcher: a batch's rows stay within one profile's range."""
    return tuple(sorted({p.max_seq for p in profiles}))


def split_rows(batch: int, max_batch: int) -> list[tuple[int, int]]:
    """(start, stop) chunks of a batch that a profile's max batch can take."""
    return [(start, min(start + max_batch, batch)) for start in range(0, batch, max_batch)]


def buffer_bytes(profiles: Sequence[Profile], itemsizes: Mapping[str, int],
                 outputs: Mapping[str, int]) -> dict[str, int]:
    """Bytes per I/O tensor so one allocation serves every profile's max shape.

    itemsizes: input name -> bytes per element; outputs: output name -> bytes per row
    (e.g. dims x 4 for float32 vectors). A context runs one profile at a time, so each
    tensor's buffer is the largest of its per-profile max shapes.
    """
    sizes = {name: max(math.prod(dict(p.shapes)[name].max) * size for p in profiles)
             for name, size in itemsizes.items()}
    top_batch = max(p.max_batch for p in profiles)
    sizes.update({name: top_batch * row for name, row in outputs.items()})
    return sizes


@dataclass(frozen=True)
class Machine:
    """What the running process sees; compared with what the plan was built on."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"


def check_compatible(plan: Mapping[str, Any], machine: Machine) -> list[str]:
    """Refuse (ArtifactError, one message listing every mismatch) a plan built by another
    TensorRT version or for another compute capability: TensorRT plans are not portable
    across either. Returns warnings for differences that still run (another GPU model of
    the same compute capability: correct, but tactics were timed on the other card)."""
    problems = []
    if plan.get("tensorrt_version") != machine.tensorrt_version:
        problems.append(f"built with TensorRT {plan.get('tensorrt_version')}, "
                        f"this machine has {machine.tensorrt_version}")
    if plan.get("compute_capability") != machine.compute_capability:
        problems.append(f"built for compute capability {plan.get('compute_capability')} "
                        f"({plan.get('gpu_name')}), this GPU is {machine.compute_capability} "
                        f"({machine.gpu_name})")
    if problems:
        raise ArtifactError("the TensorRT plan does not match this machine: "
                            + "; ".join(problems)
                            + ". Rebuild it here: python -m builder --backend tensorrt --force ...")
    if plan.get("gpu_name") != machine.gpu_name:
        return [f"the plan was tuned on {plan.get('gpu_name')}, running on {machine.gpu_name} "
                "(same compute capability: it runs, but rebuild for the best tactics)"]
    return []
