"""Qwen3-Reranker (Qwen/Qwen3-Reranker-0.6B/4B/8B): a Qwen3 decoder that answers "yes" or
"no" to a judging prompt; the score is P(yes) over the two tokens' next-token logits at the
last position (its model card, and SGLang's serving_rerank.py).

config.json says Qwen3ForCausalLM, as Qwen3-Embedding's does, so the checkpoint is claimed
by its name (the directory, the hub cache's `models--Qwen--Qwen3-Reranker-...`, or
config.json `_name_or_path` containing "reranker"), the way SGLang tells its rerankers
apart. The prompt pieces live here so the builder's reference and the runtime's adapter
format pairs identically.
"""

from __future__ import annotations

from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import AdapterKind, ModelSpec

CHAT_TEMPLATE = "qwen3-reranker"
PREFIX = ('<|im_start|>system\nJudge whether the Document meets the requirements based on the '
          'Query and the Instruct provided. Note that the answer can only be "yes" or '
          '"no".<|im_end|>\n<|im_start|>user\n')
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
YES, NO = "yes", "no"
MODEL_CARD_MAX_LEN = 8192  # the model card's max_length for prefix + pair + suffix


def middle(query: str, document: str, instruction: str | None = None) -> str:
    """The part between PREFIX and SUFFIX; the document comes last, so cutting the end of
    an over-long pair cuts the document, never the query."""
    return (f"<Instruct>: {instruction or DEFAULT_INSTRUCTION}\n<Query>: {query}\n"
            f"<Document>: {document}")


def is_reranker(info: CheckpointInfo) -> bool:
    names = (str(info.path), str(info.config.get("_name_or_path", "")))
    return any("reranker" in name.lower() for name in names)


def make_spec(info: CheckpointInfo) -> ModelSpec:
    positions = int(info.config.get("max_position_embeddings") or MODEL_CARD_MAX_LEN)
    return ModelSpec(
        family="qwen3_reranker",
        architecture=info.architecture,
        pooling="last",  # the last position's logits
        dims=1,
        max_len=min(MODEL_CARD_MAX_LEN, positions, info.max_len(fallback=positions)),
        normalize=False,
        chat_template=CHAT_TEMPLATE,
        # The graph already answers P(yes) (softmax over [no, yes] in-graph).
        score_activation="identity",
        hidden_size=int(info.config.get("hidden_size", 0)),
    )


FAMILY = Family(
    name="qwen3_reranker",
    description="Qwen3-Reranker: P(yes) over its yes/no judging prompt (claimed by name)",
    architectures=("Qwen3ForCausalLM",),
    make_spec=make_spec,
    exporter="builder.families.qwen3_reranker",
    adapter=AdapterKind.YES_NO_RERANKER,
    claims=is_reranker,
)
