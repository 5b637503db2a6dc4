"""What the decoder embedding families share: Qwen3-Embedding, gte-Qwen2, E5-Mistral.

A causal (or, when config.json says `is_causal: false`, bidirectional) decoder body, right
padding, the hidden state of each row's last real token (the EOS the tokenizer appends),
L2-normalised. The family files hold only their data (a DecoderTraits) and call these;
the torch side is builder/families/decoder.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import ModelSpec


@dataclass(frozen=True)
class DecoderTraits:
    name: str  # registry name, also spec.family
    description: str
    architectures: tuple[str, ...]
    matryoshka: bool = False  # trained for truncated vectors (`dimensions`)
    # Every row must end with EOS, whatever the tokenizer files say (E5-Mistral's model card
    # appends it by hand; its tokenizer.json does not under transformers 5).
    append_eos: bool = False


def make_spec(info: CheckpointInfo, traits: DecoderTraits) -> ModelSpec:
    config = info.config
    positions = int(config.get("max_position_embeddings") or info.max_len())
    return ModelSpec(
        family=traits.name,
        architecture=info.architecture,
        # The models were trained with last-token pooling; 1_Pooling only confirms it.
        pooling=info.st_pooling() or "last",
        dims=int(config["hidden_size"]),
        max_len=min(info.max_len(fallback=positions), positions),
        # modules.json's Normalize module when the checkpoint ships ST files (as
        # sentence-transformers serves it); without them the families' own recipe: L2.
        normalize=info.st_normalize() is not False,
        matryoshka=traits.matryoshka,
        prompts=info.prompts(),
        default_prompt_name=info.default_prompt_name(),
        causal=bool(config.get("is_causal", True)),
        append_eos=traits.append_eos,
    )


def family(traits: DecoderTraits) -> Family:
    return Family(
        name=traits.name,
        description=traits.description,
        architectures=traits.architectures,
        make_spec=lambda info: make_spec(info, traits),
        exporter="builder.families.decoder",
    )
