"""Pure helpers around a TensorRT plan: its optimisation profiles as manifest data, the
tightest profile for a batch, buffer sizing, and the manifest-vs-machine compatibility check.

No TensorRT here: the builder writes profiles through `Profile.to_dict`, the runtime reads
them back, and everything is unit-tested on machines without a GPU.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from runtime.errors import ApplianceError, ArtifactError

TIMING_CACHE_NAME = "timing.cache"
BATCH, SEQUENCE = "batch", "sequence"  # the named dynamic axes rows split and bucket on


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
    """One optimisation profile: a ShapeRange per graph input. The (batch, sequence)
    helpers below read the first input, for text graphs (profile tables, the GPU bench)."""

    name: str  # "seq<max sequence>" per bucket, or "all"
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


def split_rows(batch: int, max_batch: int) -> list[tuple[int, int]]:
    """(start, stop) chunks of a batch that a profile's max batch can take."""
    return [(start, min(start + max_batch, batch)) for start in range(0, batch, max_batch)]


@dataclass(frozen=True)
class RunPlan:
    profile: int  # optimisation profile index
    # (start, stop) along the "batch" axis, one engine run each; None: one run, unsplit
    chunks: tuple[tuple[int, int], ...] | None


def batch_axes(inputs: Mapping[str, Sequence[Any]]) -> dict[str, int] | None:
    """input -> index of its "batch" axis when EVERY input has one (the graph splits by
    rows); None otherwise (e.g. GME's language graph: image_embeds has no batch axis)."""
    axes = {name: list(shape).index(BATCH) for name, shape in inputs.items() if BATCH in shape}
    return axes if inputs and len(axes) == len(inputs) else None


def _fits(profile: Profile, shapes: Mapping[str, Sequence[int]],
          split: Mapping[str, int] | None) -> bool:
    ranges = dict(profile.shapes)
    for name, shape in shapes.items():
        rng = ranges.get(name)
        if rng is None or len(rng.min) != len(shape):
            return False
        for axis, size in enumerate(shape):
            top = math.inf if split is not None and split[name] == axis else rng.max[axis]
            if not rng.min[axis] <= size <= top:
                return False
    return True


def _tightness(profile: Profile, split: Mapping[str, int] | None) -> tuple[int, int]:
    """Elements per row at the profile's max (smaller: kernels tuned nearer the batch),
    then its max batch."""
    per_row = sum(math.prod(n for axis, n in enumerate(rng.max)
                            if split is None or split[name] != axis)
                  for name, rng in profile.shapes)
    return per_row, _max_rows(profile, split)


def _max_rows(profile: Profile, split: Mapping[str, int] | None) -> int:
    if split is None:
        return 0
    name, axis = next(iter(split.items()))
    return dict(profile.shapes)[name].max[axis]


def plan_run(profiles: Sequence[Profile], inputs: Mapping[str, Sequence[Any]],
             shapes: Mapping[str, Sequence[int]]) -> RunPlan:
    """The tightest profile where every fed input fits, by the graph's named axes
    (Graph.inputs: e.g. position_ids [3, "batch", "sequence"]). A graph whose inputs all
    carry "batch" takes any number of rows: they are split by the profile's max batch.
    Otherwise a shape outside every profile is refused (the batcher's limits prevent it)."""
    split = batch_axes(inputs)
    fitting = [i for i, p in enumerate(profiles) if _fits(p, shapes, split)]
    if not fitting:
        got = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
        spans = "; ".join(f"{p.name}: " + ", ".join(f"{k} {r.min}..{r.max}" for k, r in p.shapes)
                          for p in profiles)
        raise ApplianceError(f"no TensorRT profile takes {got} ({spans})")
    best = min(fitting, key=lambda i: _tightness(profiles[i], split))
    if split is None:
        return RunPlan(best, None)
    name, axis = next(iter(split.items()))
    return RunPlan(best, tuple(split_rows(shapes[name][axis], _max_rows(profiles[best], split))))


def axis_extents(profiles: Sequence[Profile], inputs: Mapping[str, Sequence[Any]],
                 axis: str) -> tuple[int, ...]:
    """Per profile, the max size of a named axis (e.g. "sequence"); () if no input has it."""
    where = [(name, list(shape).index(axis)) for name, shape in inputs.items() if axis in shape]
    if not where:
        return ()
    return tuple(max(dict(p.shapes)[name].max[i] for name, i in where) for p in profiles)


def seq_buckets(profiles: Sequence[Profile], inputs: Mapping[str, Sequence[Any]]
                ) -> tuple[int, ...]:
    """Bucket edges for the batcher: a batch's rows stay within one profile's sequence
    range; () for graphs without a sequence axis (images)."""
    return tuple(sorted(set(axis_extents(profiles, inputs, SEQUENCE))))


# TensorRT DataType name -> numpy dtype name (bf16 and the fp8/fp4 types have no numpy
# equivalent; graphs keep them inside the network, never on its I/O).
NUMPY_DTYPES = {"FLOAT": "float32", "HALF": "float16", "INT32": "int32", "INT64": "int64",
                "INT8": "int8", "UINT8": "uint8", "BOOL": "bool"}


def numpy_dtype(trt_name: str) -> str:
    try:
        return NUMPY_DTYPES[trt_name]
    except KeyError as exc:
        raise ArtifactError(f"the engine has a {trt_name} input or output, which the runtime "
                            f"cannot feed or read (supported: {', '.join(NUMPY_DTYPES)})") from exc


@dataclass(frozen=True)
class Flavour:
    """One TensorRT flavour: same Python API, different libraries, plans and targets."""

    name: str  # the --backend value
    title: str  # what messages call it
    modules: tuple[str, ...]  # import names, tried in order (the -bindings wheel's last)
    extra: str  # pip extra that installs it
    builds_without_gpu: bool  # ahead-of-time builds on any machine (TensorRT for RTX)


FLAVOURS: dict[str, Flavour] = {f.name: f for f in (
    Flavour("tensorrt", "TensorRT 11", ("tensorrt", "tensorrt_bindings"), "tensorrt", False),
    Flavour("tensorrt-rtx", "TensorRT for RTX", ("tensorrt_rtx", "tensorrt_rtx_bindings"),
            "tensorrt-rtx", True),
)}
# TensorRT for RTX targets (ComputeCapability.SM75 ...); Hopper and datacenter Blackwell
# (9.0, 10.x) are not among them: TensorRT 11 serves those.
RTX_COMPUTE_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")


@dataclass(frozen=True)
class GraphPlan:
    """One graph's plan: its file in the artifact and its optimisation profiles."""

    file: str
    profiles: tuple[Profile, ...]
    build_seconds: float = 0.0
    # profile name -> device memory its activations need, bytes per execution context: the
    # builder's estimate (builder/memory.py; attention unfused), TensorRT gives none ahead
    # of time. {}: not recorded (older artifacts).
    memory_bytes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # TensorRT's own figures from its build log: "activation_bytes" (the engine's, i.e. its
    # largest profile's; TensorRT for RTX sizes profiles at their opt shapes), "weights_bytes"
    tensorrt_memory: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # What TensorRT's activation figure says of attention (builder/memory.py
    # attention_evidence): "fused", "materialised", "undetermined" or "unknown"
    attention: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "profiles": [p.to_dict() for p in self.profiles],
                "build_seconds": self.build_seconds, "memory_bytes": dict(self.memory_bytes),
                "tensorrt_memory": dict(self.tensorrt_memory), "attention": self.attention}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GraphPlan":
        return cls(str(data["file"]), tuple(Profile.from_dict(p) for p in data["profiles"]),
                   float(data.get("build_seconds", 0.0)),
                   {str(k): int(v) for k, v in dict(data.get("memory_bytes", {})).items()},
                   {str(k): int(v) for k, v in dict(data.get("tensorrt_memory", {})).items()},
                   str(data.get("attention", "unknown")))


@dataclass(frozen=True)
class TrtRecord:
    """The manifest's `tensorrt` record: which TensorRT built the plans, for which GPUs."""

    flavour: str  # a FLAVOURS key
    version: str  # the library version that built the plans (plans are tied to it)
    # Compute capabilities the plans run on: TensorRT 11, the build GPU's; RTX, its targets.
    compute_capabilities: tuple[str, ...]
    precision: str  # chosen in the ONNX graphs; the networks are strongly typed
    plans: dict[str, GraphPlan]  # tower -> plan
    gpu_name: str | None = None  # TensorRT 11: the card the tactics were timed on
    builder_optimization_level: int = 3
    workspace_mib: int = 4096
    timing_cache: str | None = None
    # The GPU memory (GiB) the plans were fitted to (builder/fit.py); 0: not fitted
    gpu_memory_gib: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["compute_capabilities"] = list(self.compute_capabilities)
        data["plans"] = {k: p.to_dict() for k, p in self.plans.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrtRecord":
        values = dict(data)
        values["compute_capabilities"] = tuple(data["compute_capabilities"])
        values["plans"] = {k: GraphPlan.from_dict(p) for k, p in data["plans"].items()}
        return cls(**values)


@dataclass(frozen=True)
class Machine:
    """What the running process sees; compared with what the plans were built for."""

    gpu_name: str
    compute_capability: str  # "9.0"
    versions: Mapping[str, str]  # flavour -> installed library version (absent: none)


def check_compatible(record: TrtRecord, machine: Machine) -> list[str]:
    """The one compatibility rule. Raises ArtifactError (one message: every mismatch and
    the build to run instead) for plans this machine cannot run: another flavour or version
    of the library, or a compute capability outside the plans' targets. Returns warnings for
    what still runs (TensorRT 11 plans timed on another card of the same capability)."""
    problems = []
    have = machine.versions.get(record.flavour)
    if have != record.version:
        problems.append(f"built with {record.flavour} {record.version}, this machine has "
                        f"{record.flavour + ' ' + have if have else 'no ' + record.flavour}")
    if machine.compute_capability not in record.compute_capabilities:
        problems.append(f"built for compute capability {', '.join(record.compute_capabilities)}"
                        f", this GPU ({machine.gpu_name}) is {machine.compute_capability}")
    if problems:
        raise ArtifactError("the TensorRT plans do not fit this machine: " + "; ".join(problems)
                            + ". " + rebuild_hint(machine))
    if record.gpu_name and record.gpu_name != machine.gpu_name:
        return [f"the plans were tuned on {record.gpu_name}, running on {machine.gpu_name} "
                "(same compute capability: they run, but rebuild for the best tactics)"]
    return []


def rebuild_hint(machine: Machine) -> str:
    """Which build serves this GPU: RTX for its targets, TensorRT 11 built here otherwise."""
    if machine.compute_capability in RTX_COMPUTE_CAPABILITIES:
        return (f"Rebuild with python -m builder --backend tensorrt-rtx --compute-capability "
                f"{machine.compute_capability} (any machine) or --backend tensorrt (on this GPU)")
    return (f"compute capability {machine.compute_capability} is not a TensorRT for RTX target; "
            "rebuild on this GPU with python -m builder --backend tensorrt")
