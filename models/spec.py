"""ModelSpec: everything the runtime needs to know about a model family, as plain data.

The builder resolves a checkpoint to a spec (models.registry), writes it into the
artifact's manifest, and the runtime reads it back: the serving process never looks at the
checkpoint or imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

POOLINGS = ("cls", "mean", "last")


class UnsupportedModelError(ValueError):
    """A checkpoint that no registered family can serve."""


@dataclass(frozen=True)
class ModelSpec:
    family: str  # registry name, e.g. "bert"
    architecture: str  # config.json architectures[0]
    pooling: str  # one of POOLINGS, applied inside the exported graph
    dims: int  # size of the pooled vector
    max_len: int  # longest token sequence the model accepts (special tokens included)
    normalize: bool = True  # L2-normalised inside the graph
    matryoshka: bool = False  # `dimensions` allowed (truncate, then renormalise)
    # sentence-transformers prompts: ((name, text), ...), a tuple so the spec stays hashable.
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt_name: str | None = None
    chat_template: str | None = None
    modalities: tuple[str, ...] = ("text",)
    # Graph input names, in order; every text family takes ids and mask only.
    inputs: tuple[str, ...] = ("input_ids", "attention_mask")
    extra: tuple[tuple[str, Any], ...] = field(default=())  # family-specific facts

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.dims <= 0 or self.max_len <= 0:
            raise ValueError("dims and max_len must be positive")

    def prompt(self, name: str) -> str | None:
        return dict(self.prompts).get(name)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["prompts"] = dict(self.prompts)
        data["extra"] = dict(self.extra)
        data["modalities"] = list(self.modalities)
        data["inputs"] = list(self.inputs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelSpec fields: {sorted(unknown)}")
        values = dict(data)
        values["prompts"] = tuple(sorted(dict(data.get("prompts", {})).items()))
        values["extra"] = tuple(sorted(dict(data.get("extra", {})).items()))
        values["modalities"] = tuple(data.get("modalities", ("text",)))
        values["inputs"] = tuple(data.get("inputs", ("input_ids", "attention_mask")))
        return cls(**values)
