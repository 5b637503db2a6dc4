"""Build one artifact: export, save the tokenizer, verify, publish atomically."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder import export, quantize, verify, verify_items
from builder import precision as precisions
from builder.compile import CompileOptions
from builder.precision import PRECISIONS
from builder.progress import say, step
from models.registry import resolve
from runtime import artifact_cache
from runtime.manifest import BuildLimits, Manifest, fingerprint, is_artifact

BACKENDS = ("onnxruntime", "tensorrt")  # tensorrt: also compile model.plan
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
    compile_options: CompileOptions = CompileOptions()  # --backend tensorrt only
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
    """The artifact cache's rule (runtime/artifact_cache.py), for an output dir of ours:
    same checkpoint, precision and plans, which must run on this GPU when there is one."""
    want = artifact_cache.Want(str(output), precision, backend, compute_capabilities)
    machine = artifact_cache.this_machine() if backend != "onnxruntime" else None
    decision = artifact_cache.decide(output, want, machine, source_fingerprint)
    if decision.action != "reuse" and is_artifact(output):
        say(f"rebuilding {output}: {decision.reason}")
    return decision.action == "reuse"


def build(cfg: BuildConfig) -> Path:
    if cfg.precision not in PRECISIONS:
        raise BuildError(f"precision {cfg.precision!r} is not supported; "
                         f"choose from {', '.join(PRECISIONS)}")
    if cfg.backend not in BACKENDS:
        raise BuildError(f"backend {cfg.backend!r} is not one of {', '.join(BACKENDS)}")
    if cfg.precision == "int8" and cfg.backend == "tensorrt":
        raise BuildError("int8 is a CPU precision (ONNX Runtime); for TensorRT use fp16 or bf16")
    if cfg.backend == "tensorrt":  # fail before exporting, not after minutes of work
        from runtime.backends.choose import require_tensorrt

        require_tensorrt()
    checkpoint = local_checkpoint(cfg.model)
    with step(f"fingerprinting {checkpoint}"):
        source_fp = fingerprint(checkpoint)
    if not cfg.force and up_to_date(cfg.output, source_fp, cfg.precision, cfg.backend):
        say(f"{cfg.output} is up to date with {checkpoint}; skipping the build")
        return cfg.output
    family, spec = resolve(checkpoint)
    if family.towers and (cfg.backend == "tensorrt" or cfg.precision != "fp32"):
        raise BuildError(f"{family.name}: multi-tower families are built in fp32 for ONNX "
                         "Runtime only; TensorRT plans cover single-graph text families")
    say(f"family {family.name}: {spec.architecture}, pooling {spec.pooling}, "
        f"{spec.dims} dims, max {spec.max_len} tokens")
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


def _build_into(staging: Path, family, checkpoint: Path, spec, source_fp: str,  # type: ignore[no-untyped-def]
                cfg: BuildConfig) -> None:
    with step("exporting ONNX (dynamic batch and sequence, pooling in-graph)"):
        if family.towers:
            graphs = export.export_towers(family, checkpoint, spec, staging)
            onnx_path = None
        else:
            onnx_path = export.export_text(family, checkpoint, spec, staging, cfg.precision,
                                           cfg.external_data)
            if cfg.precision == "int8":
                with step("quantising to int8 (dynamic, per-channel weights, reduced range)"):
                    onnx_path = quantize.quantize_int8(onnx_path)
            graphs = {"text": export.text_graph(spec, onnx_path.name)}
    export.save_tokenizer(checkpoint, staging, spec)
    export.copy_preprocessor(checkpoint, staging)
    data = staging / export.external_data_name(onnx_path) if onnx_path else None
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
        external_data=(data.name,) if data and data.is_file() else (),
    )
    manifest.save(staging)
    checked = _verify(family, checkpoint, spec, staging, cfg.precision, onnx_path)
    tensorrt = None
    if cfg.backend == "tensorrt":
        from builder.compile import compile_plan

        with step("compiling the TensorRT plan"):
            tensorrt = compile_plan(onnx_path, spec, cfg.precision, staging,
                                    cfg.compile_options)
    dataclasses.replace(manifest, verification=checked, tensorrt=tensorrt).save(staging)


def _verify(family, checkpoint: Path, spec, staging: Path, precision: str,  # type: ignore[no-untyped-def]
            onnx_path: Path | None) -> dict:
    """The parity gate, on ONNX Runtime CPU wherever its kernels can run the graph."""
    if family.reference_items:  # image towers: text, image and text+image probes
        with step("verifying ONNX Runtime against the reference implementation"):
            return _gate(verify_items.verify(family, checkpoint, spec, staging), [])
    method, unsupported = "onnxruntime", []
    if onnx_path is not None and precisions.get(precision).torch_dtype is not None:
        unsupported = precisions.unsupported_ops(onnx_path)
    if unsupported:
        say(f"ONNX Runtime CPU has no kernels for {precision} {', '.join(unsupported)}: "
            "verifying the exported module in torch instead")
        method = "torch"
    with step(f"verifying {method} ({precision}) against the float32 reference"):
        result = verify.verify(family, checkpoint, spec, staging, precision, method)
    return _gate(result, unsupported, precision)


def _gate(result: verify.Verification, unsupported: list[str], precision: str = "fp32") -> dict:
    say(f"parity: min cosine {result.min_cosine:.6f}, mean {result.mean_cosine:.6f} "
        f"over {result.probes} probes (threshold {result.threshold}; images "
        f"{result.image_min_cosine:.6f}, threshold {verify.IMAGE_MIN_COSINE})")
    recorded = {**result.to_dict(), "onnxruntime_cpu_unsupported": unsupported}
    if precision == "int8":  # int8 is lossy by design: its own gate adds a mean threshold
        failure = quantize.GATE.failure(result.min_cosine, result.mean_cosine)
        if failure:
            raise BuildError(f"{failure}; the artifact was not published")
        recorded["mean_threshold"] = quantize.GATE.mean_cosine
    if not result.passed:
        raise BuildError(
            f"parity gate failed: min cosine {result.min_cosine:.6f} (text, needs "
            f"{result.threshold}), {result.image_min_cosine:.6f} (images, needs "
            f"{verify.IMAGE_MIN_COSINE}); the artifact was not published")
    return recorded
