"""BERT-like encoders: BGE (CLS pooling), all-MiniLM and E5-base (mean pooling).

Pooling comes from the checkpoint's sentence-transformers files (1_Pooling/config.json);
without them, CLS for BGE-named checkpoints is a guess we refuse to make, so mean pooling
(the sentence-transformers default) is used.
"""

from __future__ import annotations

from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import ModelSpec

ARCHITECTURES = (
    "BertModel",
    "BertForMaskedLM",
    "BertForPreTraining",
    "RobertaModel",
    "XLMRobertaModel",
)


def make_spec(info: CheckpointInfo) -> ModelSpec:
    config = info.config
    max_len = min(info.max_len(), int(config.get("max_position_embeddings", 512)))
    return ModelSpec(
        family="bert",
        architecture=info.architecture,
        pooling=info.st_pooling() or "mean",
        dims=int(config["hidden_size"]),
        max_len=max_len,
        normalize=True,
        prompts=info.prompts(),
        default_prompt_name=info.default_prompt_name(),
    )


FAMILY = Family(
    name="bert",
    description="BERT-like encoders (BGE, all-MiniLM, E5-base): CLS or mean pooling",
    architectures=ARCHITECTURES,
    make_spec=make_spec,
    exporter="builder.families.bert",
)
