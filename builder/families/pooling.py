"""Pooling written in torch for the export wrappers, and the one text graph of ids and mask.

The parity gate's references do not use them (sentence-transformers' modules, or the numpy
pooling in text_reference.py), so a mistake here fails the gate instead of matching itself.
"""

from __future__ import annotations

import torch

from models.spec import ModelSpec


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """hidden (b, s, d), mask (b, s) -> (b, d) in float32; right padding assumed."""
    hidden = hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    if mode == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if mode == "last":
        # The last real token of each row: right padding puts it at sum(mask) - 1.
        last = (mask.sum(1) - 1).clamp(min=0).long()
        index = last.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])
        return hidden.gather(1, index).squeeze(1)
    raise ValueError(f"unknown pooling {mode!r}")


def l2_normalize(vectors: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(vectors.float(), p=2.0, dim=-1)


class PooledEncoder(torch.nn.Module):
    """A transformers encoder/decoder body + pooling (+ L2 norm): ids, mask -> vectors."""

    def __init__(self, body: torch.nn.Module, pooling: str, normalize: bool, **fixed: object):
        super().__init__()
        self.body = body
        self.pooling = pooling
        self.normalize = normalize
        self.fixed = fixed  # extra constant kwargs, e.g. use_cache=False

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.body(input_ids=input_ids, attention_mask=attention_mask, **self.fixed)
        vectors = pool(out.last_hidden_state, attention_mask, self.pooling)
        return l2_normalize(vectors) if self.normalize else vectors


def sample_ids() -> tuple[torch.Tensor, torch.Tensor]:
    """An export sample with real padding so the traced graph keeps the masking path."""
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    mask[0] = 1
    return ids, mask


def text_graphs(module: torch.nn.Module, spec: ModelSpec) -> dict[str, tuple]:
    """A text family's one graph: every spec input (ids, mask) is (batch, sequence)."""
    seq = {0: "batch", 1: "sequence"}
    return {"text": (module, {name: seq for name in spec.inputs}, sample_ids())}
