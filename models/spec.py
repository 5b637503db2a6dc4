"""ModelSpec: everything the runtime needs to know about a model family, as plain data.

The builder resolves a checkpoint to a spec (models.registry), writes it into the
artifact's manifest, and the runtime reads it back: the serving process never looks at the
checkpoint or imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

# cls/mean/last pool hidden states; max/sum pool SPLADE's per-token vocabulary weights;
# tokens: none, a vector per token (ColBERT).
POOLINGS = ("cls", "mean", "last", "max", "sum", "tokens")


class AdapterKind(str, Enum):
    """How the runtime serves a family: one runtime adapter per kind
    (runtime/adapters/registry.py), named by the family (models/family.py) and carried in
    the manifest's spec as its string value. Shared by the packages: compare kinds, never
    strings (tests/unit/test_import_graph.py holds the code to it)."""

    TEXT = "text"  # one token graph: BERT-like encoders, decoder embedders
    DUAL_TOWER = "dual_tower"  # CLIP: a text and an image graph in one space
    VISION_LANGUAGE = "vision_language"  # GME: the vision graph's output enters the language's
    CROSS_ENCODER = "cross_encoder"  # a raw logit per (query, document) pair
    YES_NO_RERANKER = "yes_no_reranker"  # Qwen3-Reranker: P(yes) of a judging prompt
    SPARSE = "sparse"  # SPLADE: one vocabulary-sized weight vector per text, served sparse
    # bge-m3: dense, sparse lexical weights and ColBERT vectors from one pass (models/bge_m3.py)
    MULTI_HEAD = "multi_head"
    LATE_INTERACTION = "late_interaction"  # ColBERT (PyLate): a vector per token, no pooling


KINDS = tuple(kind.value for kind in AdapterKind)
SCORE_ACTIVATIONS = ("", "sigmoid", "identity")  # "": not a reranker
SPARSE_ACTIVATIONS = ("", "relu", "log1p_relu")  # SpladePooling's; "": not SPLADE


class UnsupportedModelError(ValueError):
    """A checkpoint that no registered family can serve."""


@dataclass(frozen=True)
class VisionFacts:
    """What an image tower needs at serving time, read from the checkpoint's config."""

    patch_size: int  # pixels per patch side
    image_size: int = 0  # CLIP: the square input side; 0 for dynamic-resolution towers
    spatial_merge_size: int = 1  # Qwen2-VL: patches merged per side into one image token
    # Qwen2-VL: the resize range served by default, the checkpoint's own
    # (preprocessor_config.json, as Qwen2VLImageProcessor and SGLang read it).
    min_pixels: int = 0
    max_pixels: int = 0
    # The model's own scripts' range, where it differs (GME: min/max_image_tokens, 256..1280
    # merged tokens); served with --gme-image-range gme. 0: none.
    script_min_pixels: int = 0
    script_max_pixels: int = 0

    @property
    def max_patches(self) -> int:
        """Patches of the largest image the tower takes (its packed-sequence bound)."""
        if self.image_size:
            return (self.image_size // self.patch_size) ** 2 + 1  # + the class token
        return self.max_pixels // (self.patch_size * self.patch_size)


@dataclass(frozen=True)
class LateInteraction:
    """How a ColBERT (PyLate) model reads queries and documents, from its
    config_sentence_transformers.json: a marker token after CLS ([Q] / [D]; -1: none), queries
    padded to `query_length` with the expansion token (attended only with
    `attend_expansion`) and every query vector kept; documents keep all but `skiplist_ids`."""

    query_prefix_id: int
    document_prefix_id: int
    query_length: int
    expansion_id: int  # the [MASK] token queries are expanded with
    expand_queries: bool = True
    attend_expansion: bool = False
    skiplist_ids: tuple[int, ...] = ()


def qwen2_vl_pixel_range(preprocessor: dict[str, Any]) -> tuple[int, int]:
    """A Qwen2-VL preprocessor config's resize range: min_pixels / max_pixels win over
    `size`, as in Qwen2VLImageProcessor.__init__."""
    size = preprocessor.get("size") or {}
    low = preprocessor.get("min_pixels") or size.get("shortest_edge", 56 * 56)
    high = preprocessor.get("max_pixels") or size.get("longest_edge", 28 * 28 * 1280)
    return int(low), int(high)


@dataclass(frozen=True)
class ModelSpec:
    family: str  # registry name, e.g. "bert"
    architecture: str  # config.json architectures[0]
    pooling: str  # one of POOLINGS, applied inside the exported graph
    dims: int  # size of the pooled vector
    max_len: int  # longest token sequence the model accepts (special tokens included)
    normalize: bool = True  # L2-normalised inside the graph
    matryoshka: bool = False  # `dimensions` allowed (truncate, then renormalise)
    # The sizes `dimensions` may take (config.json `matryoshka_dimensions`, as SGLang reads
    # it); empty: any size from 1 to dims.
    matryoshka_dimensions: tuple[int, ...] = ()
    # sentence-transformers prompts: ((name, text), ...), a tuple so the spec stays hashable.
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt_name: str | None = None
    chat_template: str | None = None
    modalities: tuple[str, ...] = ("text",)
    # Graph input names, in order; every text family takes ids and mask only.
    inputs: tuple[str, ...] = ("input_ids", "attention_mask")
    causal: bool = True  # decoders: causal attention unless config.json says is_causal false
    # Every row must end with EOS whatever the tokenizer files say (E5-Mistral).
    append_eos: bool = False
    vision: VisionFacts | None = None  # set for families that take images
    # One item may hold text and an image together (GME); else one modality per item (CLIP).
    items_mix_modalities: bool = False
    # How the runtime feeds the graphs (runtime/adapters/registry.py: one adapter per kind);
    # a string in the manifest, an AdapterKind here.
    adapter: AdapterKind = AdapterKind.TEXT
    # Rerankers (cross-encoders): the graph returns one raw logit per (query, document)
    # pair, and this is the activation the reference applies to it ("sigmoid" or
    # "identity", from the checkpoint's sentence-transformers config); "" for embedders.
    score_activation: str = ""
    # The body's hidden size where the output is not a hidden vector (rerankers: dims is 1);
    # 0: dims. It sizes CPU batches (runtime/backends/ort.py one_thread_batch_tokens).
    hidden_size: int = 0
    # SPLADE (sentence-transformers SpladePooling): log1p(activation(logits)) per token and
    # vocabulary entry, pooled over the tokens by `pooling` (max or sum); "": not SPLADE.
    sparse_activation: str = ""
    # bge-m3: the ColBERT head's width (0: no ColBERT head) and the token ids its sparse
    # head drops (FlagEmbedding: cls, eos, pad, unk).
    colbert_dims: int = 0
    sparse_skip_ids: tuple[int, ...] = ()
    late: LateInteraction | None = None  # ColBERT models (models/colbert.py)

    @property
    def is_reranker(self) -> bool:
        return bool(self.score_activation)

    @property
    def width(self) -> int:
        return self.hidden_size or self.dims

    def __post_init__(self) -> None:
        if self.adapter not in KINDS:
            raise ValueError(f"unknown adapter {self.adapter!r} (family {self.family!r}); this "
                             f"runtime serves {', '.join(KINDS)}")
        object.__setattr__(self, "adapter", AdapterKind(self.adapter))
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.dims <= 0 or self.max_len <= 0:
            raise ValueError("dims and max_len must be positive")
        if self.sparse_activation not in SPARSE_ACTIVATIONS:
            raise ValueError(f"sparse_activation must be one of {SPARSE_ACTIVATIONS}, "
                             f"got {self.sparse_activation!r}")
        if self.score_activation not in SCORE_ACTIVATIONS:
            raise ValueError(f"score_activation must be one of {SCORE_ACTIVATIONS}, "
                             f"got {self.score_activation!r}")

    def prompt(self, name: str) -> str | None:
        return dict(self.prompts).get(name)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["prompts"] = dict(self.prompts)
        data["modalities"] = list(self.modalities)
        data["inputs"] = list(self.inputs)
        data["matryoshka_dimensions"] = list(self.matryoshka_dimensions)
        data["sparse_skip_ids"] = list(self.sparse_skip_ids)
        data["adapter"] = self.adapter.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelSpec fields: {sorted(unknown)}")
        values = dict(data)
        values["prompts"] = tuple(sorted(dict(data.get("prompts", {})).items()))
        values["vision"] = VisionFacts(**data["vision"]) if data.get("vision") else None
        if data.get("late"):
            late = dict(data["late"])
            values["late"] = LateInteraction(**{**late, "skiplist_ids": tuple(
                late.get("skiplist_ids", ()))})
        values["modalities"] = tuple(data.get("modalities", ("text",)))
        values["inputs"] = tuple(data.get("inputs", ("input_ids", "attention_mask")))
        values["matryoshka_dimensions"] = tuple(data.get("matryoshka_dimensions", ()))
        values["sparse_skip_ids"] = tuple(data.get("sparse_skip_ids", ()))
        return cls(**values)
