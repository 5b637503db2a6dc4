"""The artifact manifest: what was built, from what, and how.

The runtime owns the format; the builder writes it through `Manifest.save`. An artifact
directory holds manifest.json, the ONNX graph(s), tokenizer.json and, for TensorRT, the plan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.spec import ModelSpec
from runtime.errors import ArtifactError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    spec: ModelSpec
    source: dict[str, Any]  # {"path", "fingerprint"}
    precision: str  # "fp32", "fp16", "bf16", "int8"
    opset: int
    graphs: dict[str, str]  # tower -> ONNX file, e.g. {"text": "model.onnx"}
    inputs: dict[str, list[Any]]  # graph input -> shape with symbolic axes
    versions: dict[str, str]
    verification: dict[str, Any]
    tokenizer: str = "tokenizer.json"
    tensorrt: dict[str, Any] | None = None  # plan file, TensorRT version, GPU, profiles
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["spec"] = self.spec.to_dict()
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
            data["spec"] = ModelSpec.from_dict(data["spec"])
            return cls(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path} is not a valid manifest: {exc}") from exc


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


def fingerprint_or_name(model: str) -> str:
    """A checkpoint dir's fingerprint, or the hub id itself (resolved by the builder)."""
    return fingerprint(model) if os.path.isdir(model) else model
