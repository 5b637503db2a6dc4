"""ONNX graphs -> TensorRT plans, one per graph, for either flavour (runtime.backends.
trt_plan.FLAVOURS): TensorRT 11 builds on the target GPU; TensorRT for RTX builds ahead of
time on any machine (no GPU needed) for a set of compute capabilities and specialises the
plan on the GPU at load time. Same Python API: the flavour's module is a parameter.

Each network is strongly typed (precision lives in the ONNX graph), gets optimisation
profiles from builder.profiles, a workspace limit and the builder optimisation level;
TensorRT 11 also loads and saves a timing cache so rebuilds on the same GPU skip timing.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from builder import memory
from builder.profiles import graph_profiles
from builder.progress import say
from models.spec import ModelSpec
from runtime.backends.trt_plan import (FLAVOURS, RTX_COMPUTE_CAPABILITIES, TIMING_CACHE_NAME,
                                       Flavour, GraphPlan, Profile, TrtRecord)
from runtime.errors import MissingDependencyError
from runtime.artifact.manifest import BuildLimits, Graph

# What TensorRT for RTX 1.7 targets when no compute capability is set: it compiles for
# sm80 (seen in the plan), which its JIT specialises on Ampere and later RTX-class cards.
# Turing (7.5) only when asked, and only for graphs without fp32 GEMMs.
RTX_DEFAULT_TARGETS = ("8.0", "8.6", "8.9", "12.0", "12.1")


class CompileError(RuntimeError):
    """TensorRT could not parse or build a network, or was asked for an unknown target."""


@dataclass(frozen=True)
class CompileOptions:
    max_batch_size: int = 64  # match the server's --max-batch-size
    max_batch_tokens: int = 16384  # match the server's --max-batch-tokens
    # memory-pool limit for tactic scratch space (TensorRT for RTX: the compiled graph's
    # activations too); 0: per graph, its largest profile's estimate, at least 4096
    workspace_mib: int = 0
    opt_level: int = 3  # builder optimisation level 0..5 (TensorRT default 3)
    timing_cache: Path | None = None  # shared cache file; default: beside the plans
    flavour: str = "tensorrt"  # a FLAVOURS key
    compute_capabilities: tuple[str, ...] = ()  # RTX targets; () = the library's default
    # The GPU the plans are for, in GiB (builder/fit.py): a build whose weights plus CONTEXTS
    # x the largest profile's activations (builder/memory.py) exceed it is refused before
    # exporting. None: this machine's GPU, else TensorRT for RTX's default; 0: off.
    gpu_memory_gib: float | None = None
    # Bytes of activations each execution context may hold within that budget (fit.fit sets
    # it): unfused (fp32) attention's buckets hold the rows that fit. 0: token budget only.
    context_room: int = 0


def plan_name(tower: str) -> str:
    return f"{tower}.plan"


def check_compute_capabilities(flavour: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """The requested targets, validated; CompileError lists the valid ones."""
    if values and not FLAVOURS[flavour].builds_without_gpu:
        raise CompileError("--compute-capability is for --backend tensorrt-rtx; TensorRT 11 "
                           "builds for the GPU it runs on")
    unknown = [v for v in values if v not in RTX_COMPUTE_CAPABILITIES]
    if unknown:
        raise CompileError(f"unknown compute capability {', '.join(unknown)}: TensorRT for RTX "
                           f"targets {', '.join(RTX_COMPUTE_CAPABILITIES)}")
    return tuple(dict.fromkeys(values))


def import_flavour(flavour: Flavour) -> Any:
    """The flavour's binding module: its modules tried in order (the -bindings wheel last)."""
    errors = []
    for name in flavour.modules:
        try:
            return importlib.import_module(name)
        except (ImportError, OSError) as exc:  # absent, or its libraries cannot load
            errors.append(f"{name}: {exc}")
    raise MissingDependencyError(
        f"{flavour.name} is not installed or cannot load its libraries ({'; '.join(errors)}); "
        f"install it with pip install -e '.[{flavour.extra}]'")


def _parse(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        details = "; ".join(f"node {e.node_name()!r} (operator {e.node_operator()}): {e.desc()}"
                            for e in errors)
        raise CompileError(f"{trt.__name__} could not parse {onnx_path.name}: {details}")
    return network, parser  # the parser must outlive the network's use


def network_inputs(network: Any) -> list[tuple[str, int]]:
    """(name, rank) of the parsed network's inputs, in order."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    return [(tensor.name, len(tensor.shape)) for tensor in inputs]


def _check_profiles(network: Any, profiles: tuple[Profile, ...], onnx_name: str) -> None:
    """Every profile names the network's inputs, in order, with their ranks."""
    have = network_inputs(network)
    for profile in profiles:
        want = [(name, len(rng.min)) for name, rng in profile.shapes]
        if want != have:
            raise CompileError(f"{onnx_name}: profile {profile.name} covers {want}, the "
                               f"network's inputs are {have}")


def _targets(rtx: Any, rtx_config: Any, capabilities: tuple[str, ...]) -> None:
    """TensorRT for RTX only (names TensorRT 11 lacks, hence `rtx`/`rtx_config`, which the
    API-conformance test checks against the RTX bindings): "8.9" -> ComputeCapability.SM89."""
    rtx_config.num_compute_capabilities = len(capabilities)
    for i, value in enumerate(capabilities):
        enum = getattr(rtx.ComputeCapability, "SM" + value.replace(".", ""))
        rtx_config.set_compute_capability(enum, i)


def _config(trt: Any, builder: Any, profiles: tuple[Profile, ...], opts: CompileOptions,
            cache_bytes: bytes | None) -> Any:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, max(1, opts.workspace_mib) << 20)
    config.builder_optimization_level = opts.opt_level
    if cache_bytes is not None:
        cache = config.create_timing_cache(cache_bytes)
        if not config.set_timing_cache(cache, False):  # False: refuse another GPU's timings
            say("the timing cache was made on another GPU or TensorRT; starting a fresh one")
            config.set_timing_cache(config.create_timing_cache(b""), False)
    if opts.compute_capabilities:
        _targets(trt, config, opts.compute_capabilities)
    for profile in profiles:
        shapes = builder.create_optimization_profile()
        for name, rng in profile.shapes:
            shapes.set_shape(name, rng.min, rng.opt, rng.max)
        config.add_optimization_profile(shapes)
    return config


# The builder's own figures (INFO): the engine's activation memory (the largest profile's;
# TensorRT for RTX sizes it at each profile's opt shape) and its weights.
TRT_FIGURES = {"activation_bytes": re.compile(r"Total Activation Memory: (\d+) bytes"),
               "weights_bytes": re.compile(r"Total Weights Memory: (\d+) bytes")}


def build_logger(trt: Any) -> Any:
    """A trt.ILogger that prints warnings and errors (as trt.Logger(WARNING) does) and keeps
    the builder's memory figures from its INFO messages."""

    class BuildLog(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.figures: dict[str, int] = {}

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                print(f"[TRT] [{str(severity).split('.')[-1][0]}] {msg}", file=sys.stderr)
            for key, pattern in TRT_FIGURES.items():
                found = pattern.search(msg)
                if found:
                    self.figures[key] = int(found.group(1))

    return BuildLog()


@dataclass
class _Session:
    """One flavour's builder for every graph of an artifact."""

    trt: Any
    opts: CompileOptions
    cache_path: Path | None  # TensorRT 11 only

    def __post_init__(self) -> None:
        self.base = self.opts  # the caller's options; `opts` gets each graph's workspace
        self.workspaces: list[int] = []
        self.logger = build_logger(self.trt)
        self.builder = self.trt.Builder(self.logger)
        self.cache = (self.cache_path.read_bytes()
                      if self.cache_path and self.cache_path.is_file() else b"")

    def build(self, onnx_path: Path, profiles: tuple[Profile, ...], plan_path: Path) -> float:
        start = time.perf_counter()
        self.logger.figures = {}
        network, _parser = _parse(self.trt, self.builder, self.logger, onnx_path)
        _check_profiles(network, profiles, onnx_path.name)
        config = _config(self.trt, self.builder, profiles, self.opts,
                         self.cache if self.cache_path else None)
        plan = self.builder.build_serialized_network(network, config)
        if plan is None:
            raise CompileError(f"{self.trt.__name__} could not build {onnx_path.name}; "
                               "see its log above")
        plan_path.write_bytes(memoryview(plan))
        if self.cache_path:
            timing = config.get_timing_cache()
            self.cache = bytes(memoryview(timing.serialize()))
        return time.perf_counter() - start


def _memory(tower: str, graph: Graph, profiles: tuple[Profile, ...], spec: ModelSpec,
            config: Mapping[str, Any], precision: str) -> dict[str, int]:
    """Each profile's activation estimate (bytes, one context), logged and recorded."""
    if not config:  # no config.json: nothing to estimate from
        return {}
    w = memory.tower_widths(config, tower, spec)
    out = {}
    for box in memory.graph_boxes(tower, profiles, graph.inputs, spec):
        need = memory.activation_need(box, w, precision)
        say("memory " + need.line())
        out[box.profile] = need.activations
    return out


def _attention(tower: str, graph: Graph, profiles: tuple[Profile, ...], spec: ModelSpec,
               config: Mapping[str, Any], figures: Mapping[str, int]) -> str:
    """What TensorRT's activation figure says of attention (memory.attention_evidence):
    TensorRT for RTX compiles the graph into one node, so its log names no fused layers."""
    if not config or "activation_bytes" not in figures:
        return "unknown"
    heads = memory.widths(config, tower).heads
    image_tokens = spec.vision.max_patches if spec.vision is not None else 0
    return memory.attention_evidence(figures["activation_bytes"], profiles, graph.inputs, heads,
                                     image_tokens)


def _build_graph(session: _Session, tower: str, graph: Graph, spec: ModelSpec,
                 config: Mapping[str, Any], precision: str, out_dir: Path) -> GraphPlan:
    """One graph's plan: profiles, memory (logged), a workspace that holds them, the build
    and TensorRT's own figures."""
    opts = session.base
    rows_at = (memory.unfused_rows(memory.tower_widths(config, tower, spec), precision,
                                   opts.context_room)
               if config else None)
    profiles = graph_profiles(graph.inputs, spec,
                              BuildLimits(opts.max_batch_size, opts.max_batch_tokens), rows_at)
    needs = _memory(tower, graph, profiles, spec, config, precision)
    session.opts = dataclasses.replace(opts, workspace_mib=opts.workspace_mib or
                                       memory.workspace_mib(max(needs.values(), default=0)))
    session.workspaces.append(session.opts.workspace_mib)
    seconds = session.build(out_dir / graph.onnx, profiles, out_dir / plan_name(tower))
    figures = dict(session.logger.figures)
    attention = _attention(tower, graph, profiles, spec, config, figures)
    say(f"{tower}: {len(profiles)} profiles, built in {seconds:.1f}s (workspace "
        f"{session.opts.workspace_mib} MiB); TensorRT's figures: "
        + ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in figures.items())
        + f"; attention {attention}")
    return GraphPlan(plan_name(tower), profiles, round(seconds, 2), needs, figures, attention)


def compile_plans(graphs: Mapping[str, Graph], spec: ModelSpec, precision: str,
                  out_dir: Path, opts: CompileOptions,
                  config: Mapping[str, Any] | None = None) -> TrtRecord:
    """Write out_dir/<tower>.plan for every graph; returns the manifest's `tensorrt` record."""
    flavour = FLAVOURS[opts.flavour]
    capabilities = check_compute_capabilities(flavour.name, opts.compute_capabilities)
    trt = import_flavour(flavour)
    gpu_name, cache_path = None, None
    if not flavour.builds_without_gpu:  # TensorRT 11: tactics timed on this GPU, for it
        from runtime.backends.gpu import machine

        here = machine()
        gpu_name, capabilities = here.gpu_name, (here.compute_capability,)
        cache_path = opts.timing_cache or out_dir / TIMING_CACHE_NAME
    session = _Session(trt, opts, cache_path)
    targets = capabilities or RTX_DEFAULT_TARGETS
    say(f"{flavour.name} {trt.__version__} for compute capability {', '.join(targets)}"
        + (f" ({gpu_name})" if gpu_name else "") + f", opt level {opts.opt_level}")
    plans = {tower: _build_graph(session, tower, graph, spec, config or {}, precision, out_dir)
             for tower, graph in graphs.items()}
    if cache_path:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(session.cache)
    return TrtRecord(flavour=flavour.name, version=trt.__version__,
                     compute_capabilities=targets, precision=precision, plans=plans,
                     gpu_name=gpu_name, builder_optimization_level=opts.opt_level,
                     workspace_mib=max(session.workspaces, default=opts.workspace_mib),
                     gpu_memory_gib=opts.gpu_memory_gib or 0.0,
                     timing_cache=str(cache_path) if cache_path else None)
