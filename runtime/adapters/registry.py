"""The one place a family name picks code: the adapter of each family the runtime serves.

A new family that needs only a text tower is one line here (and its file in models/).
"""

from __future__ import annotations

from runtime.adapters.base import Adapter
from runtime.adapters.clip import ClipAdapter
from runtime.adapters.gme import GmeAdapter
from runtime.adapters.text import TextAdapter
from runtime.artifact import Artifact
from runtime.errors import ArtifactError

ADAPTERS: dict[str, type[Adapter]] = {
    "bert": TextAdapter,
    "qwen3": TextAdapter,
    "gte_qwen2": TextAdapter,
    "e5_mistral": TextAdapter,
    "clip": ClipAdapter,
    "gme": GmeAdapter,
}


def adapter_for(artifact: Artifact) -> type[Adapter]:
    """The adapter class of the artifact's family; an unknown family is an ArtifactError."""
    try:
        return ADAPTERS[artifact.spec.family]
    except KeyError as exc:
        raise ArtifactError(f"{artifact.path}: unknown family {artifact.spec.family!r}; this "
                            f"runtime serves {', '.join(ADAPTERS)}") from exc
