"""Build one artifact: export, save the tokenizer, verify, publish atomically."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder import (calibration, export, fit, memory, quantize, verify, verify_heads,
                     verify_items, verify_pairs)
from builder import precision as precisions
from builder.compile import CompileOptions
from builder.precision import PRECISIONS
from builder.progress import say, step
from models.registry import resolve
from models.spec import AdapterKind, ModelSpec
from runtime.artifact import cache as artifact_cache
from runtime.backends.trt_plan import FLAVOURS
from runtime.artifact.manifest import BuildLimits, Graph, Manifest, fingerprint, is_artifact

# onnxruntime: ONNX graphs only; a TensorRT flavour (trt_plan.FLAVOURS) also compiles a plan
# per graph: tensorrt (TensorRT 11, on the target GPU), tensorrt-rtx (any machine). One list
# with the artifact cache's.
BACKENDS = artifact_cache.BUILD_BACKENDS
VERSIONED = ("torch", "transformers", "onnx", "onnxruntime", "tokenizers",
             "sentence-transformers")


class BuildError(RuntimeError):
    """The build was refused (parity gate) or failed; the artifact was not published."""


@dataclass(frozen=True)
class BuildConfig:
    model: str  # checkpoint dir or hub id
    output: Path
    precision: str = "fp32"
    force: bool = False
    backend: str = "onnxruntime"
    compile_options: CompileOptions = CompileOptions()  # TensorRT backends only
    external_data: bool = False  # weights in model.onnx.data even below protobuf's 2 GB


def package_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def local_checkpoint(model: str) -> Path:
    """A local dir as is; a hub id downloaded (on users' machines: needs the internet)."""
    if Path(model).is_dir():
        return Path(model).resolve()
    from huggingface_hub import snapshot_download

    with step(f"downloading {model} from the Hugging Face hub"):
        return Path(snapshot_download(model))


def up_to_date(output: Path, source_fingerprint: str, precision: str, backend: str,
               compute_capabilities: tuple[str, ...] = ()) -> bool:
    """The artifact cache's rule (runtime/artifact/cache.py), for an output dir of ours:
    same checkpoint, precision and plans, which must run on this GPU when there is one."""
    want = artifact_cache.Want(str(output), precision, backend, compute_capabilities)
    # TensorRT 11 plans are built for the GPU they are built on; RTX plans ahead of time for
    # other cards, so this machine says nothing about them.
    machine = artifact_cache.this_machine() if backend == "tensorrt" else None
    decision = artifact_cache.decide(output, want, machine, source_fingerprint)
    if decision.action != "reuse" and is_artifact(output):
        say(f"rebuilding {output}: {decision.reason}")
    return decision.action == "reuse"


def _refuse(cfg: BuildConfig) -> None:
    """Refuse a build that cannot succeed before exporting, not after minutes of work."""
    if cfg.precision not in PRECISIONS:
        raise BuildError(f"precision {cfg.precision!r} is not supported; "
                         f"choose from {', '.join(PRECISIONS)}")
    if cfg.backend not in BACKENDS:
        raise BuildError(f"backend {cfg.backend!r} is not one of {', '.join(BACKENDS)}")
    if cfg.precision == "int8" and cfg.backend in FLAVOURS:
        raise BuildError("int8 is a CPU precision (ONNX Runtime); for TensorRT use fp16 or bf16")
    if cfg.backend in FLAVOURS:
        from builder.compile import check_compute_capabilities, import_flavour

        check_compute_capabilities(cfg.backend, cfg.compile_options.compute_capabilities)
        import_flavour(FLAVOURS[cfg.backend])


def build(cfg: BuildConfig) -> Path:
    _refuse(cfg)
    checkpoint = local_checkpoint(cfg.model)
    with step(f"fingerprinting {checkpoint}"):
        source_fp = fingerprint(checkpoint)
    if not cfg.force and up_to_date(cfg.output, source_fp, cfg.precision, cfg.backend,
                                    cfg.compile_options.compute_capabilities):
        say(f"{cfg.output} is up to date with {checkpoint}; skipping the build")
        return cfg.output
    family, spec = resolve(checkpoint)
    if cfg.precision == "int8" and spec.vision is not None:
        raise BuildError(f"{family.name}: int8 covers text-only families; build fp32 or fp16")
    say(f"family {family.name}: {spec.architecture}, pooling {spec.pooling}, "
        f"{spec.dims} dims, max {spec.max_len} tokens")
    if cfg.backend in FLAVOURS:
        try:
            spec, options = fit.fit(checkpoint, spec, cfg.compile_options, cfg.precision,
                                    cfg.backend)
        except fit.FitError as exc:
            raise BuildError(str(exc)) from exc
        cfg = dataclasses.replace(cfg, compile_options=options)
    staging = cfg.output.parent / f".{cfg.output.name}.building"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _build_into(staging, family, checkpoint, spec, source_fp, cfg)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(cfg.output, ignore_errors=True)
    staging.rename(cfg.output)
    say(f"artifact ready: {cfg.output}")
    return cfg.output


def _export(staging: Path, family, checkpoint: Path, spec, cfg: BuildConfig) -> dict[str, Graph]:  # type: ignore[no-untyped-def]
    with step("exporting ONNX (dynamic axes, pooling in-graph)"):
        graphs = export.export_graphs(family, checkpoint, spec, staging, cfg.precision,
                                      cfg.external_data)
    if cfg.precision == "int8":
        with step("quantising to int8 (dynamic, per-channel weights, reduced range)"):
            text = graphs["text"]
            path = quantize.quantize_int8(staging / text.onnx)
            graphs = {"text": dataclasses.replace(text, onnx=path.name)}
    return graphs


def _build_into(staging: Path, family, checkpoint: Path, spec, source_fp: str,  # type: ignore[no-untyped-def]
                cfg: BuildConfig) -> None:
    graphs = _export(staging, family, checkpoint, spec, cfg)
    export.save_tokenizer(checkpoint, staging, spec)
    export.copy_preprocessor(checkpoint, staging)
    data = [export.external_data_name(Path(g.onnx)) for g in graphs.values()]
    manifest = Manifest(
        spec=spec,
        source={"path": str(checkpoint), "fingerprint": source_fp},
        precision=cfg.precision,
        opset=export.OPSET,
        graphs=graphs,
        versions=package_versions(),
        verification={},
        limits=BuildLimits(cfg.compile_options.max_batch_size,
                           cfg.compile_options.max_batch_tokens),
        external_data=tuple(name for name in data if (staging / name).is_file()),
    )
    manifest.save(staging)
    checked = _verify(family, checkpoint, spec, staging, cfg.precision, graphs)
    with step("calibrating int8/uint8 output ranges on the bundled corpus"):
        ranges = calibration.calibrate(family, checkpoint, spec, staging, cfg.precision,
                                       str(checked.get("method", "onnxruntime")))
    tensorrt = None
    if cfg.backend in FLAVOURS:
        from builder.compile import compile_plans

        options = dataclasses.replace(cfg.compile_options, flavour=cfg.backend)
        with step(f"compiling {cfg.backend} plans"):
            tensorrt = compile_plans(graphs, spec, cfg.precision, staging, options,
                                     memory.read_config(checkpoint))
    dataclasses.replace(manifest, verification=checked, tensorrt=tensorrt,
                        calibration=ranges).save(staging)


PER_TOKEN = {AdapterKind.MULTI_HEAD: verify_heads.verify,
             AdapterKind.LATE_INTERACTION: verify_heads.verify_tokens}


def _verify(family, checkpoint: Path, spec, staging: Path, precision: str,  # type: ignore[no-untyped-def]
            graphs: dict[str, Graph]) -> dict:
    """The parity gate, on ONNX Runtime CPU wherever its kernels can run the graphs."""
    unsupported: list[str] = []
    if precisions.get(precision).torch_dtype is not None:
        unsupported = sorted({op for g in graphs.values()
                              for op in precisions.unsupported_ops(staging / g.onnx)})
    if spec.vision is not None or spec.is_reranker or spec.adapter in PER_TOKEN:
        # served through the runtime's pipeline: every graph must run on ONNX Runtime CPU
        if unsupported:
            raise BuildError(f"ONNX Runtime CPU has no kernels for {', '.join(unsupported)}: "
                             f"the {precision} graphs of {family.name} cannot be verified")
    if spec.is_reranker:
        return _gate_pairs(family, checkpoint, spec, staging, precision)
    if spec.adapter in PER_TOKEN:  # bge-m3, ColBERT: served by the pipeline, every output
        with step(f"verifying ONNX Runtime ({precision}) token outputs against the reference"):
            return _gate(PER_TOKEN[spec.adapter](family, checkpoint, spec, staging, precision),
                         [], precision)
    if spec.vision is not None:  # image towers: text, image and text+image probes
        with step(f"verifying ONNX Runtime ({precision}) against the reference implementation"):
            result = verify_items.verify(family, checkpoint, spec, staging, precision)
        return _gate(result, [], precision)
    method = "onnxruntime"
    if unsupported:
        say(f"ONNX Runtime CPU has no kernels for {precision} {', '.join(unsupported)}: "
            "verifying the exported module in torch instead")
        method = "torch"
    with step(f"verifying {method} ({precision}) against the float32 reference"):
        result = verify.verify(family, checkpoint, spec, staging, precision, method)
    return _gate(result, unsupported, precision)


def _gate_pairs(family, checkpoint: Path, spec, staging: Path, precision: str) -> dict:  # type: ignore[no-untyped-def]
    """Rerankers: every probe pair's score within the precision's tolerance of the
    reference's (CrossEncoder.predict), served through the runtime's own pipeline."""
    with step(f"verifying ONNX Runtime ({precision}) scores against the reference"):
        result = verify_pairs.verify(family, checkpoint, spec, staging, precision)
    say(f"parity: max |score - reference| {result.max_abs_diff:.2e}, mean "
        f"{result.mean_abs_diff:.2e} over {result.pairs} pairs (tolerance {result.tolerance})")
    if not result.passed:
        raise BuildError(f"parity gate failed: a score {result.max_abs_diff:.2e} from the "
                         f"reference (needs <= {result.tolerance}); the artifact was not "
                         "published")
    return result.to_dict()


def _gate(result: verify.Verification, unsupported: list[str], precision: str = "fp32") -> dict:
    images = ("" if result.image_min_cosine is None else  # a text model has no image probes
              f"; images {result.image_min_cosine:.7f}, threshold {verify.IMAGE_MIN_COSINE}")
    say(f"parity: min cosine {result.min_cosine:.7f}, mean {result.mean_cosine:.7f} "
        f"over {result.probes} probes (threshold {result.threshold}{images}); lengths within "
        f"{result.max_length_error:.1e} of the reference's (tolerance "
        f"{result.length_tolerance:.1e})")
    if result.long_probe:
        say(f"parity: {result.long_probe}")
    recorded = {**result.to_dict(), "onnxruntime_cpu_unsupported": unsupported}
    if precision == "int8":  # int8 is lossy by design: its own gate adds a mean threshold
        failure = quantize.GATE.failure(result.min_cosine, result.mean_cosine)
        if failure:
            raise BuildError(f"{failure}; the artifact was not published")
        recorded["mean_threshold"] = quantize.GATE.mean_cosine
    if not result.passed:
        raise BuildError(f"parity gate failed: {'; '.join(result.failures())}; the artifact "
                         "was not published")
    return recorded
