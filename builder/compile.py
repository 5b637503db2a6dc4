"""ONNX -> TensorRT plan: a strongly typed network (TensorRT 11: precision lives in the
graph), optimisation profiles from builder.profiles, a workspace limit, the builder
optimisation level, and a timing cache that is loaded before and saved after each build so
rebuilds on the same GPU skip kernel timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.profiles import plan_profiles
from builder.progress import say
from models.spec import ModelSpec
from runtime.backends.gpu import import_tensorrt, machine
from runtime.backends.trt_plan import TIMING_CACHE_NAME, GraphPlan, Profile, TrtRecord

PLAN_NAME = "model.plan"


class CompileError(RuntimeError):
    """TensorRT could not parse or build the network."""


@dataclass(frozen=True)
class CompileOptions:
    max_batch_size: int = 64  # match the server's --max-batch-size
    max_batch_tokens: int = 16384  # match the server's --max-batch-tokens
    workspace_mib: int = 4096  # memory-pool limit for tactic scratch space
    opt_level: int = 3  # builder optimisation level 0..5 (TensorRT default 3)
    timing_cache: Path | None = None  # shared cache file; default: beside the plan


def _parse(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> Any:
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        details = "; ".join(f"{e.node_name()} ({e.node_operator()}): {e.desc()}" for e in errors)
        raise CompileError(f"TensorRT could not parse {onnx_path.name}: {details}")
    return network, parser  # the parser must outlive the network's use


def _config(trt: Any, builder: Any, profiles: tuple[Profile, ...], opts: CompileOptions,
            cache_bytes: bytes) -> Any:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    config.builder_optimization_level = opts.opt_level
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, False):  # False: refuse another GPU's timings
        say("the timing cache was made on another GPU or TensorRT; starting a fresh one")
        config.set_timing_cache(config.create_timing_cache(b""), False)
    for profile in profiles:
        shapes = builder.create_optimization_profile()
        for name, rng in profile.shapes:
            shapes.set_shape(name, rng.min, rng.opt, rng.max)
        config.add_optimization_profile(shapes)
    return config


def compile_plan(onnx_path: Path, spec: ModelSpec, precision: str, out_dir: Path,
                 opts: CompileOptions) -> TrtRecord:
    """Write out_dir/model.plan; returns the manifest's `tensorrt` record."""
    trt = import_tensorrt()
    here = machine()
    profiles = plan_profiles(spec, opts.max_batch_size, opts.max_batch_tokens)
    cache_path = opts.timing_cache or out_dir / TIMING_CACHE_NAME
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    config = _config(trt, builder, profiles, opts, cache_bytes)
    say(f"TensorRT {trt.__version__} on {here.gpu_name} (sm {here.compute_capability}): "
        f"{len(profiles)} profiles, opt level {opts.opt_level}")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise CompileError("TensorRT could not build the engine; see its log above")
    (out_dir / PLAN_NAME).write_bytes(memoryview(plan))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    timing = config.get_timing_cache()
    cache_path.write_bytes(memoryview(timing.serialize()))
    return TrtRecord(flavour="tensorrt", version=here.versions["tensorrt"],
                     compute_capabilities=(here.compute_capability,), precision=precision,
                     plans={"text": GraphPlan(PLAN_NAME, profiles)}, gpu_name=here.gpu_name,
                     builder_optimization_level=opts.opt_level,
                     workspace_mib=opts.workspace_mib, timing_cache=str(cache_path))
