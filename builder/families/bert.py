"""BERT-like encoders (models/bert.py): the transformers body + the checkpoint's pooling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.families import Items, texts_only
from models.spec import ModelSpec


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    import torch
    from transformers import AutoModel

    from builder.families.pooling import PooledEncoder

    body = AutoModel.from_pretrained(str(path), attn_implementation="eager", dtype=torch.float32)
    return PooledEncoder(body.eval(), spec.pooling, spec.normalize).eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple]:
    from builder.families.pooling import text_graphs

    return text_graphs(export_module(path, spec), spec)


def reference(path: str | Path, spec: ModelSpec, items: Items) -> Any:
    """sentence-transformers: a BERT-like spec exists only for checkpoints with its files."""
    from builder.families.text_reference import sentence_transformers

    return sentence_transformers(path, spec, texts_only(items))
