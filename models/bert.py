"""BERT-like encoders: BGE (CLS pooling), all-MiniLM and E5-base (mean pooling).

Pooling and normalisation come from the checkpoint's sentence-transformers files
(1_Pooling/config.json, a Normalize module in modules.json). Without them the pooling is a
guess (CLS for BGE, mean for MiniLM, either for others) that nothing could check: the parity
gate's reference would be our own pooling. So such a checkpoint is refused, naming the files.
"""

from __future__ import annotations

from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import ModelSpec, UnsupportedModelError

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
    pooling = info.st_pooling()
    if pooling is None:
        raise UnsupportedModelError(
            f"{info.path} has no sentence-transformers pooling (modules.json and "
            "1_Pooling/config.json): a BERT-like model's pooling (CLS or mean) and "
            "normalisation are not in its weights, and a guess would serve vectors nothing "
            "checked. Add the files of the sentence-transformers model it was trained as.")
    return ModelSpec(
        family="bert",
        architecture=info.architecture,
        pooling=pooling,
        dims=int(config["hidden_size"]),
        max_len=max_len,
        # As sentence-transformers serves it: normalised only with a Normalize module.
        normalize=bool(info.st_normalize()),
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
