"""Artifact: one built model directory, opened once.

The manifest is read here and nowhere else at startup; every other part of the runtime
(backends, tokenizer, image preprocessing) asks the Artifact for its paths and facts. The
pattern is TensorRT-LLM's Engine.from_dir: a directory plus the record of what is in it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from models.spec import ModelSpec
from runtime.errors import ArtifactError
from runtime.artifact.manifest import Graph, Manifest

PREPROCESSOR = "preprocessor_config.json"


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: Manifest

    @classmethod
    def open(cls, path: str | Path) -> "Artifact":
        return cls(Path(path), Manifest.load(path))

    def __fspath__(self) -> str:
        """The directory: an Artifact goes wherever a path to one is taken."""
        return str(self.path)

    @property
    def spec(self) -> ModelSpec:
        return self.manifest.spec

    def with_spec(self, spec: ModelSpec) -> "Artifact":
        """The same files served under `spec` (launch flags such as --context-length and
        --json-model-override-args adjust what the manifest says)."""
        return Artifact(self.path, replace(self.manifest, spec=spec))

    @property
    def towers(self) -> tuple[str, ...]:
        return tuple(self.manifest.graphs)

    def graph(self, tower: str) -> Graph:
        try:
            return self.manifest.graphs[tower]
        except KeyError as exc:
            raise ArtifactError(f"{self.path} has no {tower!r} graph "
                                f"(it has {', '.join(self.manifest.graphs)})") from exc

    def onnx_path(self, tower: str) -> Path:
        return self.path / self.graph(tower).onnx

    def plan_path(self, tower: str) -> Path | None:
        """The tower's TensorRT plan, or None when the artifact has no plans."""
        record = self.manifest.tensorrt
        if record is None:
            return None
        if tower not in record.plans:
            raise ArtifactError(f"{self.path}: the TensorRT record has no plan for the "
                                f"{tower!r} graph; rebuild the artifact")
        return self.path / record.plans[tower].file

    @property
    def tokenizer_path(self) -> Path:
        return self.path / self.manifest.tokenizer

    @property
    def preprocessor_path(self) -> Path:
        return self.path / PREPROCESSOR
