"""The cross-encoder family's spec, read from config files alone (bge-reranker-base's,
bge-reranker-v2-m3's and ms-marco-MiniLM's config.json keys, no weights, no torch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import resolve
from models.spec import ModelSpec, UnsupportedModelError
from tests.unit.models.test_models import write_checkpoint

MINILM_CE = {"architectures": ["BertForSequenceClassification"], "model_type": "bert",
             "hidden_size": 384, "max_position_embeddings": 512, "type_vocab_size": 2,
             "id2label": {"0": "LABEL_0"}}
BGE_M3 = {"architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta",
          "hidden_size": 1024, "max_position_embeddings": 8194, "type_vocab_size": 1,
          "id2label": {"0": "LABEL_0"}}


def test_bert_cross_encoder_takes_token_types_and_sigmoid(tmp_path: Path) -> None:
    family, spec = resolve(write_checkpoint(tmp_path / "ce", MINILM_CE))
    assert (family.name, spec.adapter, spec.dims, spec.max_len) == (
        "cross_encoder", "cross_encoder", 1, 512)
    assert spec.inputs == ("input_ids", "attention_mask", "token_type_ids")
    assert spec.score_activation == "sigmoid" and spec.is_reranker
    assert spec.width == 384  # CPU batches are sized by the body, not the one-score output


def test_xlm_r_reranker_has_no_token_types_and_positions_less_the_offset(tmp_path: Path) -> None:
    _, spec = resolve(write_checkpoint(tmp_path / "m3", BGE_M3))
    assert spec.inputs == ("input_ids", "attention_mask")
    assert spec.max_len == 8192


@pytest.mark.parametrize("config, expected", [
    ({"sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"}},
     "identity"),
    ({"sbert_ce_default_activation_function": "torch.nn.modules.activation.Sigmoid"},
     "sigmoid"),
])
def test_activation_comes_from_the_config(tmp_path: Path, config: dict, expected: str) -> None:
    _, spec = resolve(write_checkpoint(tmp_path / "ce", {**MINILM_CE, **config}))
    assert spec.score_activation == expected


def test_refusals(tmp_path: Path) -> None:
    two = {**MINILM_CE, "id2label": {"0": "no", "1": "yes"}}
    with pytest.raises(UnsupportedModelError, match="2 labels"):
        resolve(write_checkpoint(tmp_path / "two", two))
    odd = {**MINILM_CE, "sentence_transformers": {"activation_fn": "torch.nn.Tanh"}}
    with pytest.raises(UnsupportedModelError, match="activation"):
        resolve(write_checkpoint(tmp_path / "odd", odd))


def test_spec_round_trips_and_checks_the_activation(tmp_path: Path) -> None:
    _, spec = resolve(write_checkpoint(tmp_path / "ce", MINILM_CE))
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="score_activation"):
        ModelSpec.from_dict({**spec.to_dict(), "score_activation": "softmax"})
    embedder = ModelSpec(family="bert", architecture="BertModel", pooling="cls", dims=8,
                         max_len=16)
    assert not embedder.is_reranker and embedder.width == 8
