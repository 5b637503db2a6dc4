"""Decoder families: recognition, specs, tokenizer EOS handling, export and external data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from builder.verify import PROBES, cosines
from models.registry import resolve
from models.spec import UnsupportedModelError
from runtime.artifact.manifest import Manifest
from runtime.tokenizer import TextTokenizer
from devtools.checkpoints.tiny_decoders import KINDS, MAX_LEN, VOCAB, st_model

FAMILIES = ("qwen3", "gte_qwen2", "e5_mistral")


@pytest.mark.parametrize("name", FAMILIES)
def test_spec_from_checkpoint_files(name: str, tiny_decoder_paths: dict[str, Path]) -> None:
    family, spec = resolve(tiny_decoder_paths[name])
    assert family.name == spec.family == name
    assert (spec.pooling, spec.dims, spec.max_len, spec.normalize) == ("last", 64, MAX_LEN, True)
    assert spec.matryoshka is (name == "qwen3")
    assert spec.prompts == KINDS[name].prompts  # config_sentence_transformers.json, sorted
    assert spec.default_prompt_name is None
    assert spec.causal is True
    assert spec.append_eos is (name == "e5_mistral")


def test_architectures_pick_the_family(tiny_decoder_paths: dict[str, Path]) -> None:
    archs = {name: json.loads((p / "config.json").read_text())["architectures"][0]
             for name, p in tiny_decoder_paths.items()}
    assert archs == {"qwen3": "Qwen3ForCausalLM", "gte_qwen2": "Qwen2ForCausalLM",
                     "e5_mistral": "MistralModel"}


def test_without_sentence_transformers_files_pooling_defaults_to_last(
        tiny_decoder_paths: dict[str, Path], tmp_path: Path) -> None:
    bare = shutil.copytree(tiny_decoder_paths["gte_qwen2"], tmp_path / "bare")
    for name in ("modules.json", "config_sentence_transformers.json",
                 "sentence_bert_config.json"):
        (bare / name).unlink()
    shutil.rmtree(bare / "1_Pooling")
    config = json.loads((bare / "config.json").read_text())
    (bare / "config.json").write_text(json.dumps({**config, "is_causal": False}))
    _, spec = resolve(bare)
    assert (spec.pooling, spec.prompts, spec.max_len) == ("last", (), MAX_LEN)
    assert spec.causal is False


def test_unknown_decoder_names_supported_families(tiny_decoder_paths: dict[str, Path],
                                                  tmp_path: Path) -> None:
    other = shutil.copytree(tiny_decoder_paths["qwen3"], tmp_path / "llama")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaModel"]}))
    with pytest.raises(UnsupportedModelError, match="Qwen3ForCausalLM.*Qwen2ForCausalLM.*Mistral"):
        resolve(other)


def test_e5_mistral_rows_are_bos_text_eos(tiny_decoder_paths: dict[str, Path],
                                         tiny_decoder_artifacts: dict[str, Path]) -> None:
    """The model card's <s> text </s>, although the checkpoint's tokenizer.json (as loaded by
    transformers 5) adds only <s>."""
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(tiny_decoder_paths["e5_mistral"]))
    text = plain("hello world", add_special_tokens=False)["input_ids"]
    saved = TextTokenizer(tiny_decoder_artifacts["e5_mistral"] / "tokenizer.json", MAX_LEN)
    (row,) = saved.encode(["hello world"], truncate=False)
    assert row == [plain.bos_token_id, *text, plain.eos_token_id]


@pytest.mark.parametrize("name", FAMILIES)
def test_saved_tokenizer_matches_the_reference(name: str, tiny_decoder_paths: dict[str, Path],
                                               tiny_decoder_artifacts: dict[str, Path]) -> None:
    """Same ids as sentence-transformers, truncation included: EOS stays last."""
    texts = list(PROBES) + ["word " * (2 * MAX_LEN)]
    model = st_model(name, tiny_decoder_paths[name])
    model.max_seq_length = MAX_LEN
    ours = TextTokenizer(tiny_decoder_artifacts[name] / "tokenizer.json", MAX_LEN)
    rows = ours.encode(texts, truncate=True)
    eos = model.tokenizer.eos_token_id
    for text, row in zip(texts, rows):
        ref = model.tokenizer(text, truncation=True, max_length=MAX_LEN)["input_ids"]
        assert row == ref
        assert row[-1] == eos
    assert len(rows[-1]) == MAX_LEN


@pytest.mark.parametrize("name", FAMILIES)
def test_build_records_parity_and_graph_files(name: str,
                                              tiny_decoder_artifacts: dict[str, Path]) -> None:
    artifact = tiny_decoder_artifacts[name]
    manifest = Manifest.load(artifact)
    assert manifest.verification["min_cosine"] >= 0.99999
    files = sorted(p.name for p in artifact.iterdir())
    if name == "e5_mistral":  # forced external data: one graph, one data file, no strays
        assert files == ["calibration.npy", "manifest.json", "model.onnx", "model.onnx.data",
                         "tokenizer.json"]
        assert manifest.external_data == ("model.onnx.data",)
        # The weights live in the data file: at least the embedding table (vocab x 64 fp32).
        assert (artifact / "model.onnx.data").stat().st_size >= VOCAB * 64 * 4
    else:  # calibration.npy: the int8/uint8 calibration vectors (runtime/quantization.py)
        assert files == ["calibration.npy", "manifest.json", "model.onnx", "tokenizer.json"]


def test_spilled_per_tensor_files_are_consolidated(tiny_decoder_artifacts: dict[str, Path],
                                                   tmp_path: Path) -> None:
    """What torch writes past 2 GB (one file per initializer) becomes one data file."""
    import onnx

    from builder.export import save_external
    from builder.verify import run_artifact

    source = tiny_decoder_artifacts["qwen3"]
    spilled = tmp_path / "spilled"
    spilled.mkdir()
    onnx.save_model(onnx.load(str(source / "model.onnx")), str(spilled / "model.onnx"),
                    save_as_external_data=True, all_tensors_to_one_file=False,
                    size_threshold=0)
    assert len(list(spilled.iterdir())) > 10
    out = tmp_path / "artifact"
    out.mkdir()
    save_external(spilled / "model.onnx", out / "model.onnx")
    shutil.rmtree(spilled)
    for name in ("manifest.json", "tokenizer.json"):
        shutil.copy(source / name, out / name)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "model.onnx", "model.onnx.data", "tokenizer.json"]
    texts = list(PROBES)
    np.testing.assert_allclose(cosines(run_artifact(out, texts), run_artifact(source, texts)),
                               1.0, atol=1e-6)


def test_bidirectional_checkpoint_exports_bidirectional_attention(
        tiny_decoder_paths: dict[str, Path], tiny_decoder_artifacts: dict[str, Path],
        tmp_path: Path) -> None:
    """`is_causal: false` (gte-Qwen2 lineage) reaches the graph: the build passes the parity
    gate against sentence-transformers and the vectors differ from the causal model's."""
    from builder.verify import run_artifact
    from tests.helpers import build_artifact

    source = shutil.copytree(tiny_decoder_paths["gte_qwen2"], tmp_path / "bidirectional")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "is_causal": False}))
    artifact = build_artifact(source, tmp_path / "artifact")
    assert Manifest.load(artifact).verification["min_cosine"] >= 0.99999
    texts = list(PROBES[:4])
    causal = run_artifact(tiny_decoder_artifacts["gte_qwen2"], texts)
    assert cosines(run_artifact(artifact, texts), causal).min() < 0.99


def test_bare_checkpoint_builds_the_same_model(tiny_decoder_paths: dict[str, Path],
                                               tiny_decoder_artifacts: dict[str, Path],
                                               tmp_path: Path) -> None:
    """No sentence-transformers files: last-token pooling and EOS by default, the gate runs
    against transformers, and the vectors equal those of the full checkpoint's artifact."""
    from builder.verify import run_artifact
    from tests.helpers import build_artifact

    bare = shutil.copytree(tiny_decoder_paths["e5_mistral"], tmp_path / "bare")
    for name in ("modules.json", "config_sentence_transformers.json"):
        (bare / name).unlink()
    shutil.rmtree(bare / "1_Pooling")
    artifact = build_artifact(bare, tmp_path / "artifact")
    assert Manifest.load(artifact).verification["min_cosine"] >= 0.99999
    texts = list(PROBES)
    full = run_artifact(tiny_decoder_artifacts["e5_mistral"], texts)
    assert cosines(run_artifact(artifact, texts), full).min() >= 0.99999
