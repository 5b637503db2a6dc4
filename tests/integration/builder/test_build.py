"""The builder: manifest contents, skip when unchanged, refusal below the parity gate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from builder.build import BuildConfig, BuildError, build
from builder.families import Items
from models.family import Family
from models.registry import resolve
from models.spec import ModelSpec
from runtime.manifest import Graph, Manifest, fingerprint
from tests.helpers import ROOT


def run_builder(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builder", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_manifest_records_what_was_built(minilm_artifact: Path, minilm_path: Path) -> None:
    manifest = Manifest.load(minilm_artifact)
    assert manifest.source["fingerprint"] == fingerprint(minilm_path)
    assert manifest.spec == resolve(minilm_path)[1]
    assert (manifest.precision, manifest.opset) == ("fp32", 17)
    assert manifest.graphs == {"text": Graph("model.onnx", {
        "input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]},
        {"embeddings": ["batch", 384]})}
    assert {"torch", "transformers", "onnx", "onnxruntime"} <= set(manifest.versions)
    assert manifest.verification["threshold"] == 0.99999  # SGLang's fp32 tolerance, 1e-5
    assert manifest.verification["min_cosine"] >= 0.99999
    assert manifest.verification["probes"] >= 10
    for name in ("model.onnx", "tokenizer.json", "manifest.json"):
        assert (minilm_artifact / name).is_file()


def test_second_build_of_unchanged_checkpoint_is_skipped(minilm_artifact: Path,
                                                         minilm_path: Path) -> None:
    before = (minilm_artifact / "model.onnx").stat().st_mtime_ns
    result = run_builder("--model-path", str(minilm_path), "--output", str(minilm_artifact))
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stderr
    assert (minilm_artifact / "model.onnx").stat().st_mtime_ns == before


def test_parity_gate_refuses_to_publish(tmp_path: Path, minilm_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from builder import families

    original = families.reference

    def drifting_reference(family: Family, checkpoint: str | Path, spec: ModelSpec,
                           items: Items) -> np.ndarray:
        good = original(family, checkpoint, spec, items)
        return good + np.random.default_rng(0).normal(0, 0.02, good.shape)  # cosine ~0.93

    monkeypatch.setattr(families, "reference", drifting_reference)
    out = tmp_path / "refused"
    with pytest.raises(BuildError, match="parity gate failed"):
        build(BuildConfig(model=str(minilm_path), output=out))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the staging dir is gone too


def test_unsupported_checkpoint_fails_with_the_families(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')
    result = run_builder("--model-path", str(tmp_path), "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "GPT2LMHeadModel" in result.stderr and "Supported families" in result.stderr
    assert not (tmp_path / "out").exists()
