"""The artifact cache: where a model's artifact lives, and whether the one there serves.

One rule, used by the launcher (server/launch_server.py), the container entrypoint (through
the launcher) and the builder's up-to-date check (builder/build.py):

    <cache>/<model>-<hash>/<flavour>[-<target>]-<precision>
      onnxruntime-fp32 | tensorrt-sm9.0-fp16 | tensorrt-rtx-fp16 | tensorrt-rtx-cc8.9-fp16

The model directory is keyed by the checkpoint's absolute path or the hub id; the entry by
what was built: ONNX Runtime graphs, TensorRT 11 plans for this GPU's compute capability
(they only run there), or TensorRT-for-RTX plans for the requested targets. One shared
volume thus serves several GPU types. An entry is reused only if its manifest agrees; whether
its plans run on this machine is decided by runtime.backends.trt_plan.check_compatible alone.

Replicas sharing the cache take an flock on the entry: one builds, the others wait, then
find the entry up to date and reuse it.

    python -m runtime.artifact.cache --model M --cache DIR [--backend B] [--precision P]

prints the entry, then `reuse: why`, `build: why` or `rebuild: why` (no lock, no build).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from runtime.backends.trt_plan import FLAVOURS, Machine, check_compatible
from runtime.errors import ApplianceError, ArtifactError
from runtime import settings
from runtime.settings import add_flag
from runtime.artifact.manifest import Manifest, fingerprint, is_artifact
from runtime.quantization import calibrates

log = logging.getLogger("artifact_cache")
BUILD_BACKENDS = ("onnxruntime", *FLAVOURS)  # what an entry can be built for


@dataclass(frozen=True)
class Want:
    """What the artifact must have been built for."""

    model: str  # hub id or checkpoint dir, as the user gave it
    precision: str = settings.DEFAULT_PRECISION
    backend: str = "onnxruntime"  # a BUILD_BACKENDS value (auto is resolved before)
    compute_capabilities: tuple[str, ...] = ()  # RTX targets; (): the library's portable set

    def __post_init__(self) -> None:
        if self.backend not in BUILD_BACKENDS:
            raise ValueError(f"build backend must be one of {BUILD_BACKENDS}, got {self.backend!r}")


@dataclass(frozen=True)
class Decision:
    action: str  # "reuse" | "build" | "rebuild"
    reason: str

    def __str__(self) -> str:
        return f"{self.action}: {self.reason}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "x"


def model_name(model: str) -> str:
    """The readable name of a checkpoint dir or hub id (`make build` writes artifacts/<it>)."""
    if not os.path.isdir(model):
        return slug(model)
    path = Path(model.rstrip("/"))
    # A package's bundled checkpoint sits in .../<package>/model: name it for the package.
    return slug(path.parent.name if path.name == "model" else path.name)


def model_dir_name(model: str) -> str:
    """<name>-<hash>: readable, and unique per checkpoint location or hub id."""
    key = os.path.abspath(model) if os.path.isdir(model) else model
    return f"{model_name(model)}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def entry_name(want: Want, machine: Machine | None) -> str:
    if want.backend == "tensorrt":  # TensorRT 11 plans run on the build GPU's capability only
        if machine is None:
            raise ArtifactError("a TensorRT build needs the GPU it will run on; none is visible")
        target = f"-sm{machine.compute_capability}"
    elif want.backend == "tensorrt-rtx" and want.compute_capabilities:
        target = "-cc" + "+".join(sorted(want.compute_capabilities))
    else:
        target = ""
    return f"{want.backend}{target}-{slug(want.precision)}"


def locate(cache: Path, want: Want, machine: Machine | None) -> Path:
    return Path(cache).resolve() / model_dir_name(want.model) / entry_name(want, machine)


def source_fingerprint(model: str) -> str | None:
    """A local checkpoint's fingerprint; None for a hub id (the builder resolves it)."""
    return fingerprint(model) if os.path.isdir(model) else None


def decide(artifact: Path, want: Want, machine: Machine | None,
           source: str | None) -> Decision:
    """Reuse, build or rebuild `artifact` for `want`. `source`: the checkpoint's fingerprint
    (None: not checked); `machine`: this GPU (None: plans are not checked against one)."""
    if not is_artifact(artifact):
        return Decision("build", f"no artifact for {want.model} in {artifact} yet")
    try:
        manifest = Manifest.load(artifact)
    except ArtifactError as exc:
        return Decision("rebuild", str(exc))
    if source is not None and source != manifest.source.get("fingerprint"):
        return Decision("rebuild", "the checkpoint changed since the last build")
    if manifest.precision != want.precision:
        return Decision("rebuild", f"built at precision {manifest.precision}, "
                                   f"{want.precision} wanted")
    if manifest.calibration is None and calibrates(manifest.spec):
        # built before int8/uint8 calibration: those answers would be 400 until rebuilt
        return Decision("rebuild", "built without the int8/uint8 calibration ranges")
    stale = _plans_stale(manifest, want, machine)
    if stale:
        return Decision("rebuild", stale)
    return Decision("reuse", f"{artifact} matches the checkpoint, precision and {want.backend}")


def _plans_stale(manifest: Manifest, want: Want, machine: Machine | None) -> str | None:
    """Why the artifact's plans are not the wanted ones, or do not run here; None if fine."""
    record = manifest.tensorrt
    if want.backend == "onnxruntime":
        return f"it holds {record.flavour} plans, an ONNX-only build was asked" if record else None
    if record is None or record.flavour != want.backend:
        return f"the wanted {want.backend} plans are missing"
    missing = sorted(set(manifest.graphs) - set(record.plans))
    if missing:
        return f"the {want.backend} plans miss the {', '.join(missing)} graph(s)"
    uncovered = sorted(set(want.compute_capabilities) - set(record.compute_capabilities))
    if uncovered:
        return (f"the plans target compute capability {', '.join(record.compute_capabilities)}"
                f", {', '.join(uncovered)} wanted")
    if machine is None:
        return None
    try:
        for warning in check_compatible(record, machine):
            log.warning("%s", warning)
    except ArtifactError as exc:
        return str(exc)
    return None


class CacheNotWritableError(ArtifactError):
    """The cache directory (a bind mount, most often) belongs to another user."""


def writable_dir(path: Path) -> Path:
    """mkdir -p `path`, or one message naming it and the fix (a root-owned bind mount)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # creating a file is what a build does
            pass
    except OSError as exc:
        raise CacheNotWritableError(
            f"the artifact cache {path} is not writable by uid {os.getuid()} ({exc.strerror}); "
            f"give it to this user (on the host: chown -R {os.getuid()} <the mounted dir>) "
            "or run the container as its owner (docker run --user $(stat -c %u <dir>))"
        ) from exc
    return path


@contextlib.contextmanager
def entry_lock(entry: Path) -> Iterator[bool]:
    """Hold `<entry>.lock` (flock, released if the process dies); yields whether another
    replica held it first (it was building: the entry is then decided again)."""
    with open(f"{entry}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            log.info("another replica is building %s; waiting for it", entry)
            fcntl.flock(fh, fcntl.LOCK_EX)
            waited = True
        yield waited


Builder = Callable[[Path, bool], None]  # (entry, force) -> build the entry or raise


def ensure(cache: Path, want: Want, machine: Machine | None, build: Builder,
           force: bool = False) -> Path:
    """The entry for `want`, reused or (re)built under the replicas' lock."""
    entry = locate(cache, want, machine)
    writable_dir(entry.parent.parent)  # the mounted dir itself, named in the message
    writable_dir(entry.parent)
    with entry_lock(entry) as waited:
        decision = decide(entry, want, machine, source_fingerprint(want.model))
        if force and not waited:  # a replica that waited reuses what the builder just made
            decision = Decision("rebuild", "a rebuild was forced (--force-build)")
        log.info("model %s, backend %s, precision %s: %s", want.model, want.backend,
                 want.precision, entry)
        if decision.action == "reuse":
            log.info("cache hit, reusing the artifact: %s", decision.reason)
        else:
            log.info("cache %s: %s", "miss, building" if decision.action == "build"
                     else "stale, rebuilding", decision.reason)
            build(entry, decision.action == "rebuild")
    return entry


def build_backend(backend: str) -> str:
    """What a first-use build compiles for: a TensorRT plan when it will be served by one.
    `--backend tensorrt` without TensorRT or a GPU fails here, before any build starts."""
    from runtime.backends.gpu import require_tensorrt, tensorrt_missing

    if backend == "tensorrt":
        require_tensorrt()
        return "tensorrt"
    if backend == "tensorrt-rtx":  # ahead-of-time: builds without a GPU
        return backend
    return "tensorrt" if backend == "auto" and not tensorrt_missing() else "onnxruntime"


def run_builder(model: str, want: Want, python: str | None,
                limits: Sequence[str] = ()) -> Builder:
    """The cache's build step: `python -m builder` in its own process (torch stays there).
    `limits`: the batch flags the user gave, so TensorRT profiles are sized for them."""
    def build(entry: Path, force: bool) -> None:
        cmd = [python or sys.executable, "-m", "builder", "--model-path", model,
               "--output", str(entry), "--precision", want.precision, "--backend", want.backend]
        cmd += [arg for cc in want.compute_capabilities for arg in ("--compute-capability", cc)]
        cmd += list(limits)
        cmd += ["--force"] if force else []
        log.info("running: %s", " ".join(cmd))
        if subprocess.run(cmd, check=False).returncode != 0:
            raise ArtifactError(f"building {model} failed; see the builder's output above")
    return build


def ensure_model(cache: Path, want: Want, python: str | None = None,
                 limits: Sequence[str] = (), force: bool = False) -> Path:
    """`want.model` as is when it is an artifact; else its cache entry, reused or built by
    the builder process (the launcher's and the bulk command's one path to an artifact)."""
    if is_artifact(want.model):
        return Path(want.model)
    machine = this_machine() if want.backend != "onnxruntime" else None
    return ensure(cache, want, machine, run_builder(want.model, want, python, limits),
                  force=force)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.artifact.cache", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-path", "--model", required=True)
    add_flag(p, settings.ARTIFACT_CACHE, "--cache")
    add_flag(p, settings.BACKEND)
    add_flag(p, settings.PRECISION)
    p.add_argument("--compute-capability", action="append", default=[])
    p.add_argument("--print-name", action="store_true",
                   help="print only the model's readable name (make build's artifacts/<name>)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.print_name:
        print(model_name(args.model_path))
        return 0
    backend = build_backend(args.backend)
    want = Want(args.model_path, args.precision or settings.DEFAULT_PRECISION, backend,
                tuple(args.compute_capability))
    machine = this_machine() if backend != "onnxruntime" else None
    entry = locate(args.artifact_cache, want, machine)
    print(entry)
    print(decide(entry, want, machine, source_fingerprint(args.model_path)))
    return 0


def this_machine() -> Machine | None:
    """This process's GPU and TensorRT, or None when either is missing."""
    from runtime.backends.gpu import gpu_count, machine

    try:
        return machine() if gpu_count()[0] else None
    except ApplianceError:  # no TensorRT, or a CUDA error: no GPU to check plans against
        return None


if __name__ == "__main__":
    sys.exit(main())
