"""Decoder embedding families (models/decoder.py: Qwen3-Embedding, gte-Qwen2, E5-Mistral):
the decoder body, last-token pooling, L2 norm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.families import Items, texts_only
from models.spec import ModelSpec


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    import torch
    from transformers import AutoModel

    from builder.families.pooling import PooledEncoder

    # transformers 5 loads weights straight into the (meta-initialised) model: one copy in
    # memory, upcast to fp32 as ONNX Runtime runs it. Eager attention traces to plain
    # MatMul/Softmax (ORT fuses it) and takes the additive padding mask.
    body = AutoModel.from_pretrained(str(path), attn_implementation="eager", dtype=torch.float32)
    body.config.use_cache = False
    return PooledEncoder(body.eval(), spec.pooling, spec.normalize, use_cache=False).eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple]:
    from builder.families.pooling import text_graphs

    return text_graphs(export_module(path, spec), spec)


def reference(path: str | Path, spec: ModelSpec, items: Items) -> Any:
    """sentence-transformers in fp32 with the same tokenizer settings as the artifact;
    without its files (it would mean-pool) transformers plus last-token pooling."""
    import torch

    from builder.families.hf_tokenizer import tokenizer_kwargs
    from builder.families.text_reference import sentence_transformers, transformers_pooled

    texts = texts_only(items)
    if not (Path(path) / "modules.json").is_file():
        return transformers_pooled(path, spec, texts, use_cache=False)
    return sentence_transformers(path, spec, texts, model_kwargs={"dtype": torch.float32},
                                 processor_kwargs=tokenizer_kwargs(path, spec))
