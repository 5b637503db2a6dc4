"""The launcher's first-use build: the builder command it runs for each backend, through the
artifact cache (a stand-in builder interpreter records its arguments and writes a manifest)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Protocol

import pytest

from runtime.artifact.cache import Want, locate
from runtime.errors import ArtifactError
from server.launch_server import ensure_artifact, parser
from tests.unit.runtime.test_artifact_cache import record, write_manifest
from tests.unit.server.test_reliability_flags import ENV

FAKE_BUILDER = """#!{python}
import json, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.unit.runtime.test_artifact_cache import record, write_manifest
args = sys.argv[1:]
with open({log!r}, "a") as fh:
    fh.write(json.dumps(args) + "\\n")
out, model = Path(args[args.index("--output") + 1]), Path(args[args.index("--model-path") + 1])
backend, precision = args[args.index("--backend") + 1], args[args.index("--precision") + 1]
ccs = tuple(args[i + 1] for i, a in enumerate(args) if a == "--compute-capability")
plans = record(backend, ccs or ("8.9",)) if backend != "onnxruntime" else None
write_manifest(out, model, precision=precision, tensorrt=plans)
sys.exit({status})
"""


class MakeBuilder(Protocol):
    def __call__(self, status: int = 0) -> Path: ...


# (write a stand-in builder exiting with `status`, the argument lists it was run with so far)
Builder = tuple[MakeBuilder, Callable[[], list[list[str]]]]


@pytest.fixture()
def builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Builder:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    log = tmp_path / "calls.jsonl"

    def make(status: int = 0) -> Path:
        script = tmp_path / f"builder-{status}"
        script.write_text(FAKE_BUILDER.format(python=sys.executable, root=str(Path.cwd()),
                                              log=str(log), status=status))
        script.chmod(0o755)
        return script

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return make, calls


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    return tmp_path / "ckpt"


def launch(checkpoint: Path, cache: Path, script: Path, *flags: str) -> Path:
    args = parser().parse_args(["--model-path", str(checkpoint), "--artifact-cache", str(cache),
                                "--builder-python", str(script), *flags])
    return ensure_artifact(args)


def test_rtx_build_runs_the_builder_once_with_its_targets(tmp_path: Path, checkpoint: Path,
                                                          builder: Builder) -> None:
    make, calls = builder
    flags = ("--backend", "tensorrt-rtx", "--precision", "fp16", "--compute-capability", "8.9")
    entry = launch(checkpoint, tmp_path / "cache", make(), *flags)
    assert entry == locate(tmp_path / "cache", Want(str(checkpoint), "fp16", "tensorrt-rtx",
                                                    ("8.9",)), None)
    assert entry.name == "tensorrt-rtx-cc8.9-fp16"
    assert calls() == [["-m", "builder", "--model-path", str(checkpoint), "--output", str(entry),
                        "--precision", "fp16", "--backend", "tensorrt-rtx",
                        "--compute-capability", "8.9"]]
    assert launch(checkpoint, tmp_path / "cache", make(), *flags) == entry
    assert len(calls()) == 1  # reused
    launch(checkpoint, tmp_path / "cache", make(), *flags, "--force-build")
    assert calls()[-1][-1] == "--force" and len(calls()) == 2


def test_onnx_build_and_artifact_dirs(tmp_path: Path, checkpoint: Path,
                                      builder: Builder) -> None:
    make, calls = builder
    entry = launch(checkpoint, tmp_path / "cache", make(), "--backend", "onnxruntime")
    assert entry.name == "onnxruntime-fp32" and "--compute-capability" not in calls()[0]
    # A built artifact is served as it is: no cache, no builder.
    art = write_manifest(tmp_path / "art", checkpoint, tensorrt=record())
    assert launch(art, tmp_path / "other", make()) == art and len(calls()) == 1


def test_a_failed_build_is_one_error(tmp_path: Path, checkpoint: Path,
                                     builder: Builder) -> None:
    make, _ = builder
    with pytest.raises(ArtifactError, match=f"building {checkpoint} failed"):
        launch(checkpoint, tmp_path / "cache", make(status=1), "--backend", "onnxruntime")


def test_batch_flags_given_size_the_first_use_build(tmp_path: Path, checkpoint: Path,
                                                    builder: Builder) -> None:
    """TensorRT profiles are sized by the builder's limits: the server's flags reach it."""
    make, calls = builder
    launch(checkpoint, tmp_path / "cache", make(), "--backend", "tensorrt-rtx",
           "--max-batch-size", "16", "--max-batch-tokens", "4096")
    assert calls()[0][-4:] == ["--max-batch-size", "16", "--max-batch-tokens", "4096"]
    launch(checkpoint, tmp_path / "other", make(), "--backend", "tensorrt-rtx")
    assert "--max-batch-size" not in calls()[1]  # not given: the builder's defaults
