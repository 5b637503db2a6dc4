"""Family: how one model family is recognised and described.

A family is data plus one pure function, `make_spec` (reads files). How it is exported and
checked (torch) lives with the builder, in the module `exporter` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from models.checkpoint import CheckpointInfo
from models.spec import AdapterKind, ModelSpec


@dataclass(frozen=True)
class Family:
    name: str
    description: str  # shown in "unsupported model" errors
    architectures: tuple[str, ...]  # config.json architectures this family serves
    make_spec: Callable[[CheckpointInfo], ModelSpec]
    # The dotted module of its torch side (export graphs, reference implementation), e.g.
    # "builder.families.bert": resolved by the builder, so models never imports it.
    exporter: str
    adapter: AdapterKind = AdapterKind.TEXT  # how the runtime serves it (ModelSpec.adapter)
    # A further test where architectures are shared (Qwen3-Reranker and Qwen3-Embedding are
    # both Qwen3ForCausalLM); the family listed first in the registry that claims one wins.
    claims: Callable[[CheckpointInfo], bool] | None = None

    def matches(self, info: CheckpointInfo) -> bool:
        if info.architecture not in self.architectures:
            return False
        return self.claims is None or self.claims(info)
