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
from runtime.artifact.manifest import Graph, Manifest, fingerprint
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


@pytest.fixture(scope="module")
def unnormalised_bert(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    from devtools.checkpoints.tiny_bert import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("tiny") / "raw-bert", minilm_path, normalize=False)


def test_a_model_without_normalize_is_served_unnormalised(
        unnormalised_bert: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """No Normalize module in modules.json: the graph returns sentence-transformers' own
    lengths, and the gate checked them (not only the direction)."""
    from builder.families.text_reference import sentence_transformers
    from builder.verify import probe_texts, run_artifact

    artifact = build(BuildConfig(model=str(unnormalised_bert), output=tmp_path / "raw"))
    manifest = Manifest.load(artifact)
    assert manifest.spec.normalize is False
    assert manifest.verification["max_length_error"] <= 1e-5
    texts = probe_texts(manifest.spec)
    ours, st = run_artifact(artifact, texts), sentence_transformers(unnormalised_bert,
                                                                    manifest.spec, texts)
    norms = np.linalg.norm(ours, axis=1)
    assert np.abs(norms - 1.0).min() > 0.1  # far from unit length: really unnormalised
    np.testing.assert_allclose(norms, np.linalg.norm(st, axis=1), rtol=1e-5)
    log = capfd.readouterr().err
    assert "lengths within " in log and "images" not in log  # text only: no image figures


def test_the_gate_refuses_a_graph_that_normalises_a_model_that_does_not(
        unnormalised_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What cosine alone passed: the same model, normalised in the graph."""
    import dataclasses

    from builder import build as build_module

    def normalising(path: str | Path) -> tuple[Family, ModelSpec]:
        family, spec = resolve(path)
        return family, dataclasses.replace(spec, normalize=True)

    monkeypatch.setattr(build_module, "resolve", normalising)
    out = tmp_path / "refused"
    with pytest.raises(BuildError, match=r"parity gate failed: vector lengths .* from the "
                       r"reference's \(needs <= 4\.5e-03; does the graph normalise where the "
                       r"model does not, or the reverse\?\); the artifact was not published"):
        build(BuildConfig(model=str(unnormalised_bert), output=out))
    assert not out.exists()


@pytest.fixture()
def qwen3_without_st_files(tiny_decoder_paths: dict[str, Path], tmp_path: Path) -> Path:
    """The tiny Qwen3-Embedding with its sentence-transformers files taken away."""
    import shutil

    out = shutil.copytree(tiny_decoder_paths["qwen3"], tmp_path / "bare-qwen3")
    for name in ("modules.json", "sentence_bert_config.json",
                 "config_sentence_transformers.json"):
        (out / name).unlink()
    shutil.rmtree(out / "1_Pooling")
    shutil.rmtree(out / "2_Normalize")
    return out


def test_without_st_files_the_reference_is_transformers_not_the_export(
        qwen3_without_st_files: Path, tiny_decoder_paths: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate's reference (transformers' model, pooling written out apart from the export)
    is sentence-transformers' answer for the same weights, and a pooling mistake in the
    exported graph no longer passes by being compared with itself."""
    from builder import families
    from builder.families import pooling
    from devtools.checkpoints.tiny_decoders import st_model

    family, spec = resolve(qwen3_without_st_files)
    texts = ["What is the capital of France?", "a", "Short."]
    ours = families.reference(family, qwen3_without_st_files, spec, [(t, None) for t in texts])
    st = st_model("qwen3", tiny_decoder_paths["qwen3"]).encode(texts)
    np.testing.assert_allclose(ours, st, atol=1e-5)

    real_pool = pooling.pool
    monkeypatch.setattr(pooling, "pool", lambda hidden, mask, mode: real_pool(hidden, mask, "cls"))
    with pytest.raises(BuildError, match="parity gate failed: min cosine"):
        build(BuildConfig(model=str(qwen3_without_st_files), output=tmp_path / "wrong-pool"))
