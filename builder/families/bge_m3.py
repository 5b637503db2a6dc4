"""bge-m3 (models/bge_m3.py): the XLM-R body and FlagEmbedding's two head files, exported as
one graph whose output packs every head per token: (batch, sequence, dims + 1), position 0
the normalised CLS vector, positions 1.. the normalised ColBERT vectors, the last column
each token's relu'd sparse weight (runtime/adapters/bge_m3.py unpacks it). The reference
(the build's parity gate) is FlagEmbedding's M3 inference, written out here in numpy per
text, apart from the export's torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.spec import ModelSpec, UnsupportedModelError


def load_heads(path: str | Path, spec: ModelSpec) -> tuple[Any, Any]:
    """colbert_linear (hidden -> colbert_dims) and sparse_linear (hidden -> 1), as
    FlagEmbedding's runner loads them; another ColBERT width is refused."""
    import torch

    heads = []
    for name, width in (("colbert_linear.pt", spec.colbert_dims), ("sparse_linear.pt", 1)):
        state = torch.load(Path(path) / name, map_location="cpu", weights_only=True)
        if tuple(state["weight"].shape) != (width, spec.dims):
            raise UnsupportedModelError(
                f"{path}/{name}: weight {tuple(state['weight'].shape)}, expected "
                f"{(width, spec.dims)} (bge-m3's heads: ColBERT hidden -> hidden, sparse "
                "hidden -> 1)")
        linear = torch.nn.Linear(spec.dims, width)
        linear.load_state_dict(state)
        heads.append(linear.eval())
    return heads[0], heads[1]


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    import torch
    from transformers import AutoModel

    from builder.families.pooling import l2_normalize

    class M3Heads(torch.nn.Module):
        """ids, mask -> (batch, sequence, dims + 1) float32: every head per token."""

        def __init__(self, body: torch.nn.Module, colbert: torch.nn.Module,
                     sparse: torch.nn.Module):
            super().__init__()
            self.body, self.colbert, self.sparse = body, colbert, sparse

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask
                               ).last_hidden_state
            dense = l2_normalize(hidden[:, :1])
            colbert = l2_normalize(self.colbert(hidden[:, 1:]))
            weights = torch.relu(self.sparse(hidden).float())
            return torch.cat([torch.cat([dense, colbert], dim=1), weights], dim=-1)

    body = AutoModel.from_pretrained(str(path), attn_implementation="eager", dtype=torch.float32,
                                     add_pooling_layer=False)
    return M3Heads(body.eval(), *load_heads(path, spec)).eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple]:
    from builder.families.pooling import text_graphs

    return text_graphs(export_module(path, spec), spec)


def output_shape(spec: ModelSpec) -> list[str | int]:
    return ["batch", "sequence", spec.dims + 1]


def reference(path: str | Path, spec: ModelSpec, items: Any) -> Any:
    raise ValueError("bge-m3 has three heads: use reference_heads")


def reference_heads(path: str | Path, spec: ModelSpec, texts: list[str]
                    ) -> list[tuple[np.ndarray, dict[int, float], np.ndarray]]:
    """FlagEmbedding's BGEM3 inference per text (no padding): (dense, {token id: weight},
    ColBERT vectors), in float64 numpy past the body."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    body = AutoModel.from_pretrained(str(path), attn_implementation="eager", dtype=torch.float32,
                                     add_pooling_layer=False).eval()
    colbert, sparse = load_heads(path, spec)
    skip = set(spec.sparse_skip_ids)
    out = []
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer([text], truncation=True, max_length=spec.max_len, return_tensors="pt")
            hidden = body(**enc).last_hidden_state[0]
            weights = torch.relu(sparse(hidden))[:, 0].double().numpy()
            lexical: dict[int, float] = {}
            for token, weight in zip(enc["input_ids"][0].tolist(), weights):
                if token not in skip and weight > 0:
                    lexical[token] = max(lexical.get(token, 0.0), float(weight))
            vectors = colbert(hidden[1:]).double().numpy()
            dense = hidden[0].double().numpy()
            out.append((dense / np.linalg.norm(dense), lexical,
                        vectors / np.linalg.norm(vectors, axis=1, keepdims=True)))
    return out
