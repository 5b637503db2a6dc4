"""ColBERT late-interaction models in PyLate's format (answerdotai/answerai-colbert-small-v1,
lightonai/GTE-ModernColBERT-v1, colbert-ir/colbertv2.0 as PyLate saves it): a BERT-like body
and Dense projections (modules.json), a vector per token, L2-normalised. Queries and
documents differ (config_sentence_transformers.json): a [Q] or [D] marker after CLS, queries
padded with [MASK] to `query_length` (query expansion) and all their vectors kept,
documents cut at `document_length` with punctuation (`skiplist_words`) dropped. Served as
multi-vector output only; `prompt_name: "query"` encodes a query, else a document."""

from __future__ import annotations

import string

from models.checkpoint import CheckpointInfo
from models.cross_encoder import usable_positions
from models.family import Family
from models.spec import AdapterKind, LateInteraction, ModelSpec, UnsupportedModelError
from models.tokens import named_token, read_json, vocabulary

ARCHITECTURES = ("BertModel", "RobertaModel", "XLMRobertaModel", "DistilBertModel")
# PyLate's defaults for keys a config leaves out (pylate/models/colbert.py).
DEFAULTS = {"query_prefix": "[unused0]", "document_prefix": "[unused1]", "query_length": 32,
            "document_length": 180, "do_query_expansion": True,
            "attend_to_expansion_tokens": False, "skiplist_words": list(string.punctuation)}
PYLATE_KEYS = ("query_prefix", "document_prefix", "query_length", "document_length")


def dense_modules(info: CheckpointInfo) -> list[dict]:
    return [m for m in info.modules if str(m.get("type", "")).rsplit(".", 1)[-1] == "Dense"]


def claims(info: CheckpointInfo) -> bool:
    return bool(dense_modules(info)) and any(k in info.st_config for k in PYLATE_KEYS)


def _token_id(ids: dict[str, int], token: str, what: str, info: CheckpointInfo) -> int:
    if not token:
        return -1  # "" : no marker (PyLate's choice for models trained without one)
    if token not in ids:
        raise UnsupportedModelError(f"{info.path}: the {what} {token!r} is not in the "
                                    "tokenizer's vocabulary")
    return ids[token]


def late_interaction(info: CheckpointInfo) -> LateInteraction:
    cfg, ids = {**DEFAULTS, **info.st_config}, vocabulary(info)
    mask = named_token(info, "mask_token") or ""
    unknown = ids.get(named_token(info, "unk_token") or "", -1)
    return LateInteraction(
        query_prefix_id=_token_id(ids, str(cfg["query_prefix"]), "query prefix", info),
        document_prefix_id=_token_id(ids, str(cfg["document_prefix"]), "document prefix", info),
        query_length=int(cfg["query_length"]),
        expansion_id=_token_id(ids, mask, "mask token (query expansion)", info),
        expand_queries=bool(cfg["do_query_expansion"]),
        attend_expansion=bool(cfg["attend_to_expansion_tokens"]),
        # PyLate's convert_tokens_to_ids: a word not in the vocabulary is the unknown token's
        # id, so [UNK] tokens are then dropped from documents too.
        skiplist_ids=tuple(sorted({ids.get(w, unknown) for w in cfg["skiplist_words"]}
                                  - {-1})))


def make_spec(info: CheckpointInfo) -> ModelSpec:
    late = late_interaction(info)
    dense = read_json(info.path / str(dense_modules(info)[-1].get("path", "")) / "config.json")
    marker = int(late.document_prefix_id >= 0)
    document = int({**DEFAULTS, **info.st_config}["document_length"])
    return ModelSpec(
        family="colbert",
        architecture=info.architecture,
        pooling="tokens",
        dims=int(dense["out_features"]),
        # A document's tokens before its marker goes in after CLS.
        max_len=min(document, usable_positions(info.config)) - marker,
        normalize=True,
        prompts=(("document", ""), ("query", "")),  # the marker is an id, not text
        adapter=AdapterKind.LATE_INTERACTION,
        hidden_size=int(info.config.get("hidden_size") or info.config.get("dim") or 0),
        late=late,
    )


FAMILY = Family(
    name="colbert",
    description="ColBERT late-interaction models (PyLate): a vector per token",
    architectures=ARCHITECTURES,
    make_spec=make_spec,
    exporter="builder.families.colbert",
    adapter=AdapterKind.LATE_INTERACTION,
    claims=claims,
)
