"""bge-m3 (BAAI/bge-m3): an XLM-RoBERTa body with three heads from one forward pass, as
FlagEmbedding's BGEM3FlagModel computes them:

- dense: the CLS hidden state, L2-normalised;
- sparse lexical weights: relu(sparse_linear(hidden)) per token, the max per token id, with
  the cls, eos, pad and unk ids dropped (and zero weights);
- ColBERT vectors: colbert_linear(hidden) of every token after the first, L2-normalised.

The heads are `colbert_linear.pt` (hidden -> hidden) and `sparse_linear.pt` (hidden -> 1)
beside the XLM-R checkpoint: their presence is what tells bge-m3 from a plain XLM-R
embedder. The graph returns every token's head outputs (builder/families/bge_m3.py); the
host takes the per-id max and drops the padding (runtime/adapters/bge_m3.py).
"""

from __future__ import annotations

from models.checkpoint import CheckpointInfo
from models.cross_encoder import usable_positions
from models.family import Family
from models.spec import AdapterKind, ModelSpec
from models.tokens import named_token, vocabulary

HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")
SKIPPED_TOKENS = ("cls_token", "eos_token", "pad_token", "unk_token")  # FlagEmbedding's


def claims(info: CheckpointInfo) -> bool:
    return all((info.path / name).is_file() for name in HEAD_FILES)


def skipped_ids(info: CheckpointInfo) -> tuple[int, ...]:
    """The ids of the cls, eos, pad and unk tokens, from the tokenizer's own files."""
    ids = vocabulary(info)
    named = (named_token(info, key) for key in SKIPPED_TOKENS)
    return tuple(sorted({ids[token] for token in named if token in ids}))


def make_spec(info: CheckpointInfo) -> ModelSpec:
    config = info.config
    hidden = int(config["hidden_size"])
    return ModelSpec(
        family="bge_m3",
        architecture=info.architecture,
        pooling="cls",
        dims=hidden,
        max_len=min(info.max_len(), usable_positions(config)),
        normalize=True,
        prompts=info.prompts(),
        default_prompt_name=info.default_prompt_name(),
        adapter=AdapterKind.MULTI_HEAD,
        # FlagEmbedding's default (colbert_dim -1): hidden -> hidden; the export checks it.
        colbert_dims=hidden,
        sparse_skip_ids=skipped_ids(info),
    )


FAMILY = Family(
    name="bge_m3",
    description="bge-m3: dense, sparse and ColBERT heads from one XLM-RoBERTa pass",
    architectures=("XLMRobertaModel",),
    make_spec=make_spec,
    exporter="builder.families.bge_m3",
    adapter=AdapterKind.MULTI_HEAD,
    claims=claims,
)
