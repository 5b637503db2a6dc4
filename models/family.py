"""Family: how one model family is recognised, described and exported.

A family is data plus small functions. `make_spec` is pure (reads files); `export_module`
returns a torch module and is called by the builder only, so torch is imported inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from models.checkpoint import CheckpointInfo
from models.spec import ModelSpec


@dataclass(frozen=True)
class Family:
    name: str
    description: str  # shown in "unsupported model" errors
    architectures: tuple[str, ...]  # config.json architectures this family serves
    make_spec: Callable[[CheckpointInfo], ModelSpec]
    # (checkpoint path, spec) -> torch.nn.Module whose forward(*spec.inputs) returns
    # pooled (and normalised, if spec.normalize) float32 vectors.
    export_module: Callable[[Any, ModelSpec], Any]
    # (checkpoint path, spec, texts) -> reference vectors (numpy), for the build-time gate.
    reference: Callable[[Any, ModelSpec, list[str]], Any]
    # Multi-tower families (CLIP, GME): (checkpoint, spec) -> {tower: (torch module,
    # {input: dynamic axes}, sample inputs)}, each exported as <tower>.onnx; None: one
    # text graph from export_module.
    towers: Callable[[Any, ModelSpec], dict[str, tuple[Any, dict, tuple]]] | None = None
    # (checkpoint, spec, [(text | None, PIL image | None)]) -> reference vectors; set for
    # families that take images, so the parity gate covers every modality.
    reference_items: Callable[[Any, ModelSpec, list[tuple[Any, Any]]], Any] | None = None

    def matches(self, info: CheckpointInfo) -> bool:
        return info.architecture in self.architectures
