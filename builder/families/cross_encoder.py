"""Cross-encoders (models/cross_encoder.py): the sequence-classification model's raw logit
per pair; the reference is sentence-transformers' CrossEncoder.predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from models.spec import ModelSpec


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification

    class PairLogit(torch.nn.Module):
        """ids, mask (, token types) -> the classifier's logit (batch, 1) in float32."""

        def __init__(self, body: torch.nn.Module):
            super().__init__()
            self.body = body

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.body(input_ids=input_ids, attention_mask=attention_mask, **extra)
            return out.logits.float()

    body = AutoModelForSequenceClassification.from_pretrained(
        str(path), attn_implementation="eager", dtype=torch.float32)
    return PairLogit(body.eval()).eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple]:
    from builder.families.pooling import sample_ids

    ids, mask = sample_ids()
    types = mask.clone()
    types[:, :2] = 0  # a query segment, then the document's: both embeddings are traced
    sample = (ids, mask, types)[:len(spec.inputs)]
    seq = {0: "batch", 1: "sequence"}
    return {"text": (export_module(path, spec), {name: seq for name in spec.inputs}, sample)}


def reference(path: str | Path, spec: ModelSpec, items: Any) -> Any:
    raise ValueError("a cross-encoder scores (query, document) pairs: use reference_pairs")


def reference_pairs(path: str | Path, spec: ModelSpec, pairs: Sequence[tuple[str, str]]) -> Any:
    """CrossEncoder.predict with the checkpoint's own activation (sigmoid for one label
    unless its config names another) and maximum length."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(path), device="cpu", max_length=spec.max_len)
    return model.predict(list(pairs), batch_size=16, convert_to_numpy=True)
