"""Build one artifact: export, save the tokenizer, verify, publish atomically."""

from __future__ import annotations

import importlib.metadata
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder import export, quantize, verify
from builder.progress import say, step
from models.registry import resolve
from runtime.manifest import Manifest, fingerprint, is_artifact

PRECISIONS = ("fp32", "int8")  # int8: CPU only, opt-in (builder/quantize.py)
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


def up_to_date(output: Path, source_fingerprint: str, precision: str) -> bool:
    if not is_artifact(output):
        return False
    try:
        manifest = Manifest.load(output)
    except Exception:  # any unreadable manifest means: rebuild
        return False
    return (manifest.source.get("fingerprint") == source_fingerprint
            and manifest.precision == precision)


def build(cfg: BuildConfig) -> Path:
    if cfg.precision not in PRECISIONS:
        raise BuildError(f"precision {cfg.precision!r} is not supported; choose from {PRECISIONS}")
    checkpoint = local_checkpoint(cfg.model)
    with step(f"fingerprinting {checkpoint}"):
        source_fp = fingerprint(checkpoint)
    if not cfg.force and up_to_date(cfg.output, source_fp, cfg.precision):
        say(f"{cfg.output} is up to date with {checkpoint}; skipping the build")
        return cfg.output
    family, spec = resolve(checkpoint)
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
        onnx_path = export.export_text(family, checkpoint, spec, staging)
    if cfg.precision == "int8":
        with step("quantising to int8 (dynamic, per-channel weights, reduced range)"):
            onnx_path = quantize.quantize_int8(onnx_path)
    export.save_tokenizer(checkpoint, staging)
    manifest = Manifest(
        spec=spec,
        source={"path": str(checkpoint), "fingerprint": source_fp},
        precision=cfg.precision,
        opset=export.OPSET,
        graphs={"text": onnx_path.name},
        inputs=export.input_shapes(spec),
        versions=package_versions(),
        verification={},
    )
    manifest.save(staging)
    with step("verifying ONNX Runtime against the reference implementation"):
        result = verify.verify(family, checkpoint, spec, staging)
    say(f"parity: min cosine {result.min_cosine:.6f}, mean {result.mean_cosine:.6f} "
        f"over {result.probes} probes")
    failure, recorded = _gate(cfg.precision, result)
    if failure:
        raise BuildError(f"{failure}; the artifact was not published")
    Manifest(**{**manifest.__dict__, "verification": recorded}).save(staging)


def _gate(precision: str, result: verify.Verification) -> tuple[str | None, dict]:
    """(why the build is refused or None, what the manifest records about the check)."""
    if precision == "int8":  # int8 is lossy by design: its own, looser gate
        gate = quantize.GATE
        failure = gate.failure(result.min_cosine, result.mean_cosine)
        return failure, {**result.to_dict(), "threshold": gate.min_cosine,
                         "mean_threshold": gate.mean_cosine}
    if result.min_cosine < verify.MIN_COSINE:
        return (f"parity gate failed: min cosine {result.min_cosine:.6f} < "
                f"{verify.MIN_COSINE}"), result.to_dict()
    return None, result.to_dict()
