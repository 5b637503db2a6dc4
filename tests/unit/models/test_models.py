"""ModelSpec, checkpoint files and the family registry (pure file reading, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.checkpoint import read_checkpoint
from models.registry import FAMILIES, resolve
from models.spec import ModelSpec, UnsupportedModelError


def write_checkpoint(root: Path, config: dict, files: dict[str, object] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config))
    for name, content in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(content))
    return root


BERT = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 1024,
        "max_position_embeddings": 512}
ST_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
              {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
              {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


def test_minilm_resolves_to_mean_pooling_with_st_max_length(minilm_path: Path) -> None:
    family, spec = resolve(minilm_path)
    assert family.name == "bert"
    assert (spec.pooling, spec.dims, spec.max_len, spec.normalize) == ("mean", 384, 256, True)
    assert not spec.matryoshka


def test_bge_like_checkpoint_gets_cls_pooling(tmp_path: Path) -> None:
    root = write_checkpoint(tmp_path / "bge", BERT, {
        "modules.json": ST_MODULES,
        "1_Pooling/config.json": {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
        "sentence_bert_config.json": {"max_seq_length": 512},
        "config_sentence_transformers.json": {"prompts": {"query": "Represent this sentence: "}},
    })
    _, spec = resolve(root)
    assert (spec.pooling, spec.dims, spec.max_len) == ("cls", 1024, 512)
    assert spec.prompt("query") == "Represent this sentence: "


def test_max_length_falls_back_to_tokenizer_then_config(tmp_path: Path) -> None:
    root = write_checkpoint(tmp_path / "e5", BERT, {"tokenizer_config.json": {"model_max_length": 384}})
    assert read_checkpoint(root).max_len() == 384
    # A tokenizer's "unbounded" sentinel (1e30) is ignored in favour of the config.
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 10**30}))
    assert read_checkpoint(root).max_len() == 512


def test_a_bert_without_sentence_transformers_pooling_is_refused(tmp_path: Path) -> None:
    """CLS or mean is not in the weights: a guess would pass a gate that checks it against
    itself, so it is not made."""
    root = write_checkpoint(tmp_path / "bert", BERT)
    with pytest.raises(UnsupportedModelError) as info:
        resolve(root)
    assert str(info.value) == (
        f"{root} has no sentence-transformers pooling (modules.json and 1_Pooling/config.json): "
        "a BERT-like model's pooling (CLS or mean) and normalisation are not in its weights, "
        "and a guess would serve vectors nothing checked. Add the files of the "
        "sentence-transformers model it was trained as.")


@pytest.mark.parametrize("modules, normalize", [(ST_MODULES, True), (ST_MODULES[:2], False)])
def test_bert_normalises_only_with_a_normalize_module(tmp_path: Path, modules: list,
                                                      normalize: bool) -> None:
    root = write_checkpoint(tmp_path / "st", BERT, {
        "modules.json": modules, "1_Pooling/config.json": {"pooling_mode_mean_tokens": True}})
    assert resolve(root)[1].normalize is normalize


@pytest.mark.parametrize("files, normalize", [
    ({}, True),  # no ST files: the family's recipe (last token, L2)
    ({"modules.json": ST_MODULES}, True),
    ({"modules.json": ST_MODULES[:2]}, False),
])
def test_decoders_read_normalize_from_modules_json(tmp_path: Path, files: dict,
                                                   normalize: bool) -> None:
    config = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 64,
              "max_position_embeddings": 128}
    _, spec = resolve(write_checkpoint(tmp_path / "qwen3", config, files))
    assert spec.pooling == "last" and spec.normalize is normalize


def test_unknown_architecture_names_every_supported_family(tmp_path: Path) -> None:
    root = write_checkpoint(tmp_path / "gpt2", {"architectures": ["GPT2LMHeadModel"]})
    with pytest.raises(UnsupportedModelError) as info:
        resolve(root)
    message = str(info.value)
    assert "GPT2LMHeadModel" in message
    for family in FAMILIES:
        assert family.name in message


def test_a_dir_without_config_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve(tmp_path)


def test_spec_round_trips_through_dict() -> None:
    spec = ModelSpec(family="bert", architecture="BertModel", pooling="cls", dims=8, max_len=16,
                     prompts=(("query", "q: "),), default_prompt_name="query")
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and hash(again) == hash(spec)


def test_spec_rejects_unknown_pooling_and_fields() -> None:
    with pytest.raises(ValueError, match="pooling"):
        ModelSpec(family="x", architecture="X", pooling="median", dims=8, max_len=8)
    data = ModelSpec(family="x", architecture="X", pooling="cls", dims=8, max_len=8).to_dict()
    with pytest.raises(ValueError, match="unknown ModelSpec fields"):
        ModelSpec.from_dict({**data, "surprise": 1})
