"""SPLADE and bge-m3 specs from their config files alone (naver/splade-v3's and BAAI/bge-m3's
config.json keys, no weights, no torch): who claims which checkpoint, and what the runtime
is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import resolve
from models.spec import AdapterKind, ModelSpec, UnsupportedModelError
from tests.unit.models.test_models import ST_MODULES, write_checkpoint

SPLADE_V3 = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 768,
             "vocab_size": 30522, "max_position_embeddings": 512}
SPLADE_MODULES = [
    {"idx": 0, "name": "0", "path": "",
     "type": "sentence_transformers.sparse_encoder.models.MLMTransformer"},
    {"idx": 1, "name": "1", "path": "1_SpladePooling",
     "type": "sentence_transformers.sparse_encoder.models.SpladePooling"}]
BGE_M3 = {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "hidden_size": 1024,
          "vocab_size": 250002, "max_position_embeddings": 8194}
M3_TOKENS = {"added_tokens": [{"id": 0, "content": "<s>"}, {"id": 1, "content": "<pad>"},
                              {"id": 2, "content": "</s>"}, {"id": 3, "content": "<unk>"},
                              {"id": 250001, "content": "<mask>"}]}
M3_TOKENIZER_CONFIG = {"model_max_length": 8192, "cls_token": "<s>", "eos_token": "</s>",
                       "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}


def splade(root: Path, pooling: dict) -> Path:
    return write_checkpoint(root, SPLADE_V3, {"modules.json": SPLADE_MODULES,
                                              "1_SpladePooling/config.json": pooling})


def test_splade_is_claimed_by_its_pooling_module(tmp_path: Path) -> None:
    family, spec = resolve(splade(tmp_path / "s", {"pooling_strategy": "max",
                                                   "activation_function": "relu"}))
    assert (family.name, spec.adapter, spec.pooling, spec.sparse_activation) == (
        "splade", AdapterKind.SPARSE, "max", "relu")
    assert (spec.dims, spec.width, spec.max_len, spec.normalize) == (30522, 768, 512, False)
    assert ModelSpec.from_dict(spec.to_dict()) == spec  # through the manifest and back


def test_a_masked_lm_without_splade_pooling_stays_a_bert_embedder(tmp_path: Path) -> None:
    family, spec = resolve(write_checkpoint(tmp_path / "mlm", SPLADE_V3, {
        "modules.json": ST_MODULES, "1_Pooling/config.json": {"pooling_mode_cls_token": True}}))
    assert (family.name, spec.adapter) == ("bert", AdapterKind.TEXT)


def test_splade_sum_pooling_and_log1p_relu(tmp_path: Path) -> None:
    _, spec = resolve(splade(tmp_path / "s", {"pooling_strategy": "sum",
                                              "activation_function": "log1p_relu"}))
    assert (spec.pooling, spec.sparse_activation) == ("sum", "log1p_relu")


def test_an_unknown_splade_pooling_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="SpladePooling mean/relu"):
        resolve(splade(tmp_path / "s", {"pooling_strategy": "mean"}))


def test_bge_m3_is_claimed_by_its_head_files(tmp_path: Path) -> None:
    root = write_checkpoint(tmp_path / "m3", BGE_M3, {
        "tokenizer.json": M3_TOKENS, "tokenizer_config.json": M3_TOKENIZER_CONFIG,
        "modules.json": ST_MODULES, "1_Pooling/config.json": {"pooling_mode_cls_token": True}})
    assert resolve(root)[0].name == "bert"  # without the heads: an XLM-R embedder
    for name in ("colbert_linear.pt", "sparse_linear.pt"):
        (root / name).write_bytes(b"weights")
    family, spec = resolve(root)
    assert (family.name, spec.adapter, spec.pooling, spec.normalize) == (
        "bge_m3", AdapterKind.MULTI_HEAD, "cls", True)
    assert (spec.dims, spec.colbert_dims, spec.max_len) == (1024, 1024, 8192)
    assert spec.sparse_skip_ids == (0, 1, 2, 3)  # cls, pad, eos, unk; never <mask>
    assert ModelSpec.from_dict(spec.to_dict()) == spec


COLBERT_ST = {"query_prefix": "[unused0]", "document_prefix": "[unused1]", "query_length": 32,
              "document_length": 300, "attend_to_expansion_tokens": False,
              "skiplist_words": ["!", ".", "§"]}  # "§": not in the vocabulary


def colbert(root: Path, st_config: dict) -> Path:
    return write_checkpoint(root, {**SPLADE_V3, "architectures": ["BertModel"]}, {
        "modules.json": [ST_MODULES[0], {"idx": 1, "name": "1", "path": "1_Dense",
                                         "type": "pylate.models.Dense.Dense"}],
        "1_Dense/config.json": {"in_features": 768, "out_features": 128, "bias": False},
        "config_sentence_transformers.json": st_config,
        "tokenizer_config.json": {"mask_token": "[MASK]", "unk_token": "[UNK]"},
        "tokenizer.json": {"model": {"vocab": {"[PAD]": 0, "[UNK]": 100, "[MASK]": 103,
                                               "[unused0]": 1, "[unused1]": 2, "!": 999,
                                               ".": 1012}}}})


def test_colbert_is_claimed_by_pylates_keys_and_dense(tmp_path: Path) -> None:
    family, spec = resolve(colbert(tmp_path / "c", COLBERT_ST))
    assert (family.name, spec.adapter, spec.pooling, spec.dims) == (
        "colbert", AdapterKind.LATE_INTERACTION, "tokens", 128)
    assert spec.max_len == 299  # document_length, less the document marker
    late = spec.late
    assert late is not None
    assert (late.query_prefix_id, late.document_prefix_id, late.query_length,
            late.expansion_id) == (1, 2, 32, 103)
    assert late.skiplist_ids == (100, 999, 1012)  # "§" is [UNK]'s id, as PyLate reads it
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_a_colbert_marker_missing_from_the_vocabulary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="query prefix '\\[Q\\] '"):
        resolve(colbert(tmp_path / "c", {**COLBERT_ST, "query_prefix": "[Q] "}))
