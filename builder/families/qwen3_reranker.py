"""Qwen3-Reranker (models/qwen3_reranker.py): the decoder body, the last real token's
hidden state, the language-model head's "no" and "yes" rows only, softmax -> P(yes)
(batch, 1). The reference is its model card's transformers code, pair by pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from models import qwen3_reranker as card
from models.spec import ModelSpec


def yes_no_ids(tokenizer: Any) -> tuple[int, int]:
    return (tokenizer.convert_tokens_to_ids(card.YES), tokenizer.convert_tokens_to_ids(card.NO))


def _load(path: str | Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(path), attn_implementation="eager",
                                                 dtype=torch.float32)
    model.config.use_cache = False
    return model.eval(), AutoTokenizer.from_pretrained(str(path))


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    import torch

    from builder.families.pooling import pool

    model, tokenizer = _load(path)
    yes, no = yes_no_ids(tokenizer)

    class YesProbability(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = model.model
            # Two rows of the head, not the vocabulary-wide projection: (2, hidden).
            self.register_buffer("head", model.lm_head.weight[[no, yes]].detach().clone())

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            last = pool(out.last_hidden_state, attention_mask, "last")
            logits = last @ self.head.float().T  # (batch, [no, yes])
            return torch.softmax(logits, dim=-1)[:, 1:2]

    return YesProbability().eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple]:
    from builder.families.pooling import text_graphs

    return text_graphs(export_module(path, spec), spec)


def reference(path: str | Path, spec: ModelSpec, items: Any) -> Any:
    raise ValueError("a reranker scores (query, document) pairs: use reference_pairs")


def reference_pairs(path: str | Path, spec: ModelSpec, pairs: Sequence[tuple[str, str]],
                    instruction: str | None = None) -> Any:
    """The model card's code: prefix + (the pair, cut to fit) + suffix, the last position's
    [no, yes] logits, log-softmax, exp of yes; one pair at a time (no padding)."""
    import torch

    model, tokenizer = _load(path)
    yes, no = yes_no_ids(tokenizer)
    prefix = tokenizer.encode(card.PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(card.SUFFIX, add_special_tokens=False)
    room = spec.max_len - len(prefix) - len(suffix)
    scores = []
    with torch.inference_mode():
        for query, doc in pairs:
            body = tokenizer(card.middle(query, doc, instruction), truncation="longest_first",
                             max_length=room, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prefix + body + suffix])
            logits = model(input_ids=ids).logits[0, -1, [no, yes]]
            scores.append(torch.log_softmax(logits.float(), dim=-1)[1].exp().item())
    return scores
