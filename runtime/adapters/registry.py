"""The adapters the runtime serves, by the kind a family's spec names (ModelSpec.adapter,
set from models.registry). A new text family needs nothing here: its file in models/ and
its line in models/registry.py."""

from __future__ import annotations

from models.spec import AdapterKind
from runtime.adapters.base import Adapter
from runtime.adapters.bge_m3 import BgeM3Adapter
from runtime.adapters.clip import ClipAdapter
from runtime.adapters.colbert import ColbertAdapter
from runtime.adapters.cross_encoder import CrossEncoderAdapter
from runtime.adapters.gme import GmeAdapter
from runtime.adapters.splade import SpladeAdapter
from runtime.adapters.text import TextAdapter
from runtime.adapters.yes_no import YesNoRerankerAdapter
from runtime.artifact import Artifact
from runtime.errors import ArtifactError

ADAPTERS: dict[AdapterKind, type[Adapter]] = {  # by ModelSpec.adapter
    AdapterKind.TEXT: TextAdapter,
    AdapterKind.DUAL_TOWER: ClipAdapter,
    AdapterKind.VISION_LANGUAGE: GmeAdapter,
    AdapterKind.CROSS_ENCODER: CrossEncoderAdapter,
    AdapterKind.YES_NO_RERANKER: YesNoRerankerAdapter,
    AdapterKind.SPARSE: SpladeAdapter,
    AdapterKind.MULTI_HEAD: BgeM3Adapter,
    AdapterKind.LATE_INTERACTION: ColbertAdapter,
}


def adapter_for(artifact: Artifact) -> type[Adapter]:
    """The adapter class the artifact's spec names; an unknown one is an ArtifactError."""
    try:
        return ADAPTERS[artifact.spec.adapter]
    except KeyError as exc:
        raise ArtifactError(f"{artifact.path}: unknown adapter {artifact.spec.adapter!r} "
                            f"(family {artifact.spec.family!r}); this runtime serves "
                            f"{', '.join(k.value for k in ADAPTERS)}") from exc
