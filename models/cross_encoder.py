"""Cross-encoder rerankers: BERT/RoBERTa/XLM-R `*ForSequenceClassification` with one label
(BAAI/bge-reranker-base and -v2-m3, cross-encoder/ms-marco-MiniLM-L-6-v2).

The graph takes a tokenised (query, document) pair and returns the classifier's raw logit;
the runtime applies the activation sentence-transformers' CrossEncoder applies: the one named
in config.json (`sentence_transformers.activation_fn`, or the pre-v4
`sbert_ce_default_activation_function`), else sigmoid for a one-label model.
"""

from __future__ import annotations

from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import AdapterKind, ModelSpec, UnsupportedModelError

ARCHITECTURES = (
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "XLMRobertaForSequenceClassification",
)
# torch activation classes CrossEncoder resolves from config.json, by our names.
ACTIVATIONS = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.Sigmoid": "sigmoid",
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.Identity": "identity",
}
# RoBERTa-style position ids start after the padding index: 514 positions serve 512 tokens.
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2}


def usable_positions(config: dict) -> int:
    """The tokens the position table serves (RoBERTa-style tables spend 2 on padding)."""
    positions = int(config.get("max_position_embeddings", 512))
    return positions - POSITION_OFFSET.get(str(config.get("model_type")), 0)


def num_labels(config: dict) -> int:
    if "id2label" in config:
        return len(config["id2label"])
    return int(config.get("num_labels", 2))


def activation(config: dict) -> str:
    path = ((config.get("sentence_transformers") or {}).get("activation_fn")
            or config.get("sbert_ce_default_activation_function"))
    if path is None:
        return "sigmoid"  # CrossEncoder's default for one label
    if path not in ACTIVATIONS:
        raise UnsupportedModelError(f"cross-encoder activation {path!r} is not supported; "
                                    f"supported: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[path]


def make_spec(info: CheckpointInfo) -> ModelSpec:
    config = info.config
    if num_labels(config) != 1:
        raise UnsupportedModelError(
            f"{info.path}: a cross-encoder with {num_labels(config)} labels; only one-label "
            "rerankers (one relevance score per pair) are supported")
    positions = usable_positions(config)
    # token_type_ids where the model has segment embeddings (BERT); RoBERTa/XLM-R have one.
    segments = int(config.get("type_vocab_size", 1)) > 1
    return ModelSpec(
        family="cross_encoder",
        architecture=info.architecture,
        pooling="cls",  # the classifier reads the first token; kept for the manifest
        dims=1,
        max_len=min(info.max_len(), positions),
        normalize=False,
        inputs=("input_ids", "attention_mask", *(("token_type_ids",) if segments else ())),
        score_activation=activation(config),
        hidden_size=int(config.get("hidden_size", 0)),
    )


FAMILY = Family(
    name="cross_encoder",
    description="cross-encoder rerankers (bge-reranker, ms-marco MiniLM): one score per pair",
    architectures=ARCHITECTURES,
    make_spec=make_spec,
    exporter="builder.families.cross_encoder",
    adapter=AdapterKind.CROSS_ENCODER,
)
