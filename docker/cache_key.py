"""Where the entrypoint keeps a model's artifact, and whether the one there can be reused.

    python cache_key.py --model M --cache DIR --gpu NAME --tensorrt VERSION \
        --backend B --precision P [--force]

prints two lines: the artifact directory, then `reuse: why`, `build: why` or
`rebuild: why` (rebuild means the builder must run with --force, because its own
up-to-date check only compares the checkpoint and the precision).

The directory is keyed by model, GPU and TensorRT version (and precision), so one
shared volume serves several GPU types; the manifest is still checked, since a plan
copied or restored from elsewhere must not be trusted by its directory name alone.
Runs in the serving venv: no torch, only the runtime's manifest reader.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import ArtifactError
from runtime.manifest import Manifest, fingerprint, is_artifact

@dataclass(frozen=True)
class Target:
    """What the artifact must have been built for."""

    model: str  # hub id or checkpoint dir, as the user gave it
    gpu: str  # GPU name from nvidia-smi, or "cpu"
    tensorrt: str  # TensorRT version, or "none"
    backend: str  # auto | tensorrt | onnxruntime
    precision: str


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "x"


def artifact_dir(cache: Path, target: Target) -> Path:
    """<cache>/<model>-<hash>/<gpu>-trt<version>-<precision>: one entry per GPU type."""
    local = os.path.isdir(target.model)
    key = os.path.abspath(target.model) if local else target.model
    name = Path(target.model.rstrip("/")).name if local else target.model.replace("/", "--")
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    build = f"{slug(target.gpu)}-trt{slug(target.tensorrt)}-{slug(target.precision)}"
    return cache / f"{slug(name)}-{digest}" / build


def _same(a: str | None, b: str) -> bool:
    return a is not None and a.strip().lower() == b.strip().lower()


def plan_mismatch(manifest: Manifest, target: Target) -> str | None:
    """Why a TensorRT plan in the manifest does not fit this machine, or None."""
    record = manifest.tensorrt
    if not record:
        return "no TensorRT plan in the artifact" if target.backend == "tensorrt" else None
    gpu, version = record.gpu_name, record.version
    if not _same(gpu, target.gpu) or not _same(version, target.tensorrt):
        return (f"the plan was built for GPU {gpu!r} with TensorRT {version!r}; "
                f"this is {target.gpu!r} with TensorRT {target.tensorrt!r}")
    return None


def decide(artifact: Path, target: Target) -> tuple[str, str]:
    """('reuse' | 'build' | 'rebuild', why)."""
    if not is_artifact(artifact):
        return "build", f"no artifact for {target.model} in {artifact} yet"
    try:
        manifest = Manifest.load(artifact)
    except ArtifactError as exc:
        return "rebuild", str(exc)
    if manifest.precision != target.precision:
        return "rebuild", f"built at precision {manifest.precision}, {target.precision} wanted"
    if os.path.isdir(target.model):
        if fingerprint(target.model) != manifest.source.get("fingerprint"):
            return "rebuild", f"the checkpoint {target.model} changed since the last build"
    mismatch = plan_mismatch(manifest, target)
    if mismatch:
        return "rebuild", mismatch
    return "reuse", f"{artifact} matches the checkpoint, GPU and TensorRT version"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--gpu", default="cpu")
    p.add_argument("--tensorrt", default="none")
    p.add_argument("--backend", default="auto")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--force", action="store_true", help="rebuild whatever is cached")
    args = p.parse_args(argv)
    target = Target(args.model, args.gpu, args.tensorrt, args.backend, args.precision)
    artifact = artifact_dir(args.cache.resolve(), target)
    verdict, why = ("rebuild", "FORCE_BUILD is set") if args.force else decide(artifact, target)
    print(artifact)
    print(f"{verdict}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
