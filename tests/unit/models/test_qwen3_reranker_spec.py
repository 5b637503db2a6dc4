"""Qwen3-Reranker is told from Qwen3-Embedding (both Qwen3ForCausalLM) by its name."""

from __future__ import annotations

from pathlib import Path

from models import qwen3_reranker
from models.registry import resolve
from tests.unit.models.test_models import write_checkpoint

QWEN3 = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
         "max_position_embeddings": 40960}


def test_claimed_by_its_directory_or_name(tmp_path: Path) -> None:
    family, spec = resolve(write_checkpoint(tmp_path / "models--Qwen--Qwen3-Reranker-0.6B",
                                            QWEN3))
    assert (family.name, spec.adapter, spec.dims, spec.max_len) == (
        "qwen3_reranker", "yes_no_reranker", 1, qwen3_reranker.MODEL_CARD_MAX_LEN)
    assert spec.is_reranker and spec.score_activation == "identity"
    named = {**QWEN3, "_name_or_path": "Qwen/Qwen3-Reranker-4B"}
    assert resolve(write_checkpoint(tmp_path / "snapshot", named))[0].name == "qwen3_reranker"


def test_other_qwen3_checkpoints_stay_embedders(tmp_path: Path) -> None:
    family, spec = resolve(write_checkpoint(tmp_path / "Qwen3-Embedding-0.6B", QWEN3))
    assert family.name == "qwen3" and not spec.is_reranker


def test_the_document_comes_last() -> None:
    text = qwen3_reranker.middle("q?", "the doc")
    assert text.endswith("<Document>: the doc") and "<Query>: q?\n" in text
    assert qwen3_reranker.DEFAULT_INSTRUCTION in text
    assert "<Instruct>: mine\n" in qwen3_reranker.middle("q", "d", "mine")
