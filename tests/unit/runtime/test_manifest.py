"""The artifact manifest format and the checkpoint fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.spec import ModelSpec
from runtime.errors import ArtifactError
from runtime.artifact.manifest import Graph, Manifest, fingerprint, is_artifact

SPEC = ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=4, max_len=8)


def manifest() -> Manifest:
    return Manifest(spec=SPEC, source={"path": "/ckpt", "fingerprint": "abc"}, precision="fp32",
                    opset=17, graphs={"text": Graph("model.onnx", {"input_ids": ["batch", "sequence"]},
                                                    {"embeddings": ["batch", 4]})},
                    versions={"onnx": "1"}, verification={"min_cosine": 1.0})


def test_manifest_round_trips(tmp_path: Path) -> None:
    manifest().save(tmp_path)
    assert is_artifact(tmp_path)
    assert Manifest.load(tmp_path) == manifest()


def test_missing_corrupt_and_foreign_manifests_are_artifact_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a built artifact"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        Manifest.load(tmp_path)
    data = manifest().to_dict()
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ArtifactError, match="rebuild"):
        Manifest.load(tmp_path)
    del data["graphs"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="not a valid manifest"):
        Manifest.load(tmp_path)


def test_fingerprint_follows_content_and_names(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "w.bin").write_bytes(b"\x00" * 10)
    (tmp_path / ".cache").mkdir()
    first = fingerprint(tmp_path)
    (tmp_path / ".cache" / "junk").write_text("ignored: hidden")
    assert fingerprint(tmp_path) == first
    (tmp_path / "w.bin").write_bytes(b"\x00" * 9 + b"\x01")
    assert fingerprint(tmp_path) != first
