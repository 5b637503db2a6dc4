"""SPLADE sparse encoders (naver/splade-v3, opensearch neural sparse, prithivida/Splade_PP):
a masked-LM head whose logits become log1p(relu(logits)) per token and vocabulary entry,
pooled over the tokens (max, or sum for the original SPLADE), as sentence-transformers'
SparseEncoder computes them (modules MLMTransformer + SpladePooling).

The graph returns the pooled vocabulary-sized vector per text; the server answers its
nonzero entries (runtime/adapters/splade.py). A masked-LM checkpoint without the
SpladePooling module is not claimed: whether (and how) it pools is not in its weights.
"""

from __future__ import annotations

import json

from models.checkpoint import CheckpointInfo
from models.cross_encoder import usable_positions
from models.family import Family
from models.spec import AdapterKind, ModelSpec, UnsupportedModelError

ARCHITECTURES = (
    "BertForMaskedLM",
    "DistilBertForMaskedLM",
    "RobertaForMaskedLM",
    "XLMRobertaForMaskedLM",
)


def splade_config(info: CheckpointInfo) -> dict | None:
    """The SpladePooling module's config.json, or None when modules.json has no such module."""
    module = next((m for m in info.modules
                   if str(m.get("type", "")).rsplit(".", 1)[-1] == "SpladePooling"), None)
    if module is None:
        return None
    path = info.path / str(module.get("path", "")) / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def claims(info: CheckpointInfo) -> bool:
    return splade_config(info) is not None


def make_spec(info: CheckpointInfo) -> ModelSpec:
    config, pooling = info.config, splade_config(info) or {}
    strategy = str(pooling.get("pooling_strategy", "max"))
    activation = str(pooling.get("activation_function", "relu"))
    if strategy not in ("max", "sum") or activation not in ("relu", "log1p_relu"):
        raise UnsupportedModelError(
            f"{info.path}: SpladePooling {strategy}/{activation} is not supported (max or sum "
            "pooling of relu or log1p_relu)")
    return ModelSpec(
        family="splade",
        architecture=info.architecture,
        pooling=strategy,
        dims=int(config["vocab_size"]),
        max_len=min(info.max_len(), usable_positions(config)),
        normalize=False,  # SparseEncoder's weights are served as computed
        prompts=info.prompts(),
        default_prompt_name=info.default_prompt_name(),
        hidden_size=int(config.get("hidden_size") or config.get("dim") or 0),
        sparse_activation=activation,
    )


FAMILY = Family(
    name="splade",
    description="SPLADE sparse encoders (masked-LM logits, log-saturated, max-pooled)",
    architectures=ARCHITECTURES,
    make_spec=make_spec,
    exporter="builder.families.splade",
    adapter=AdapterKind.SPARSE,
    claims=claims,
)
