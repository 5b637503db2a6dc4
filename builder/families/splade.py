"""SPLADE (models/splade.py): the masked-LM logits, log-saturated and pooled over the tokens
inside the graph, so it returns one vocabulary-sized weight vector per text; the reference
is sentence-transformers' SparseEncoder (MLMTransformer + SpladePooling)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from builder.families import Items, texts_only
from models.spec import ModelSpec


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    import torch
    from transformers import AutoModelForMaskedLM

    class SpladeWeights(torch.nn.Module):
        """ids, mask -> (batch, vocab) float32: pool(log1p(act(logits))) over real tokens."""

        def __init__(self, body: torch.nn.Module):
            super().__init__()
            self.body = body

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            logits = self.body(input_ids=input_ids, attention_mask=attention_mask).logits.float()
            # Masked before the activation, as SpladePooling does: padding weighs 0, and every
            # weight is >= 0, so the max over tokens never picks a padded position.
            weights = torch.log1p(torch.relu(logits * attention_mask.unsqueeze(-1).float()))
            if spec.sparse_activation == "log1p_relu":
                weights = torch.log1p(weights)
            return weights.amax(dim=1) if spec.pooling == "max" else weights.sum(dim=1)

    body = AutoModelForMaskedLM.from_pretrained(str(path), attn_implementation="eager",
                                                dtype=torch.float32)
    return SpladeWeights(body.eval()).eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple]:
    from builder.families.pooling import text_graphs

    return text_graphs(export_module(path, spec), spec)


def reference(path: str | Path, spec: ModelSpec, items: Items) -> Any:
    """SparseEncoder.encode, densified: the weights of every vocabulary entry."""
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(str(path), device="cpu")
    model.max_seq_length = spec.max_len
    sparse = model.encode(texts_only(items), batch_size=16, convert_to_tensor=True)
    return np.asarray(sparse.to_dense().float().numpy())
