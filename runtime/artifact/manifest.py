"""The artifact manifest: what was built, from what, and how.

The runtime owns the format; the builder writes it through `Manifest.save`. An artifact
directory holds manifest.json, the ONNX graph(s), tokenizer.json and, for TensorRT, one
plan per graph (runtime/backends/trt_plan.py: TrtRecord).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.spec import ModelSpec
from runtime.backends.trt_plan import TrtRecord
from runtime.errors import ArtifactError
from runtime.settings import DEFAULT_BATCH_SIZE, DEFAULT_BATCH_TOKENS

FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
Shape = list  # per axis: an int, or the name of a dynamic axis ("batch", "sequence", ...)


@dataclass(frozen=True)
class Graph:
    """One exported ONNX graph (a tower): its file and its I/O shapes, in graph order.

    Dynamic axes carry their names, shared across inputs and graphs of one artifact: the
    TensorRT profiles are computed per axis name, and the runtime reads actual sizes back
    by the same names."""

    onnx: str
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Graph":
        return cls(str(data["onnx"]), dict(data["inputs"]), dict(data["outputs"]))


@dataclass(frozen=True)
class BuildLimits:
    """The batch limits the builder sized the graphs (and TensorRT profiles) for; the
    server's flags may lower them, never raise them past a TensorRT plan's."""

    max_batch_size: int = DEFAULT_BATCH_SIZE
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS


@dataclass(frozen=True)
class Manifest:
    spec: ModelSpec
    source: dict[str, Any]  # {"path", "fingerprint"}
    precision: str  # "fp32", "fp16", "bf16", "int8"
    opset: int
    graphs: dict[str, Graph]  # tower ("text", "image") -> its graph
    versions: dict[str, str]
    verification: dict[str, Any]
    limits: BuildLimits = BuildLimits()
    tokenizer: str = "tokenizer.json"
    tensorrt: TrtRecord | None = None  # the plans, their flavour, version and targets
    external_data: tuple[str, ...] = ()  # weight files beside the graphs
    # int8/uint8 outputs (runtime/quantization.py): {"corpus", "sha256", "texts", "vectors"
    # (the calibration vectors' file), "ranges": [[min per dim], [max per dim]]}; None: an
    # artifact built before calibration, or a family without it (images, rerankers).
    calibration: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["spec"] = self.spec.to_dict()
        data["external_data"] = list(self.external_data)
        data["tensorrt"] = self.tensorrt.to_dict() if self.tensorrt else None
        return data

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "Manifest":
        path = Path(directory) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ArtifactError(f"{directory} is not a built artifact: no {MANIFEST_NAME}") from exc
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path} is unreadable: {exc}") from exc
        if data.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"{path}: manifest format {data.get('format_version')} is not "
                f"{FORMAT_VERSION}; rebuild the artifact"
            )
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path} is not a valid manifest: {exc}") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        values = dict(data)
        values["spec"] = ModelSpec.from_dict(data["spec"])
        values["graphs"] = {k: Graph.from_dict(g) for k, g in data["graphs"].items()}
        values["limits"] = BuildLimits(**data.get("limits", {}))
        values["tensorrt"] = TrtRecord.from_dict(data["tensorrt"]) if data.get("tensorrt") else None
        values["external_data"] = tuple(data.get("external_data", ()))
        return cls(**values)


def is_artifact(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST_NAME).is_file()


def fingerprint(checkpoint: str | Path) -> str:
    """sha256 over every file's relative path and bytes: a changed checkpoint rebuilds."""
    root = Path(checkpoint)
    digest = hashlib.sha256()
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()
