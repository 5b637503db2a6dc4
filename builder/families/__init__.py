"""The torch side of every family: its export graphs and its reference implementation.

models/ keeps what a family is (pure data: architectures, make_spec); each Family names
its module here by a dotted path (`Family.exporter`), so models never imports the builder
and the registry stays the one list of families. Every exporter module offers:

- graphs(checkpoint, spec) -> {tower: (torch module, {input: {axis: name}}, sample inputs)}:
  "text" alone for text families; the module returns pooled float32 vectors.
- reference(checkpoint, spec, items) -> vectors (numpy): items are (text | None, PIL image
  | None) pairs, embedded by the original implementation for the parity gate.
- rerankers: reference_pairs(checkpoint, spec, pairs) -> one score per (query, document)
  pair instead; their graph returns the raw logit (batch, 1).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from models.family import Family
from models.spec import ModelSpec

Graphs = dict[str, tuple[Any, dict[str, dict[int, str]], tuple[Any, ...]]]
Items = list[tuple[str | None, Any]]


def exporter(family: Family) -> Any:
    return importlib.import_module(family.exporter)


def graphs(family: Family, checkpoint: str | Path, spec: ModelSpec) -> Graphs:
    return exporter(family).graphs(checkpoint, spec)


def reference(family: Family, checkpoint: str | Path, spec: ModelSpec, items: Items) -> np.ndarray:
    return np.asarray(exporter(family).reference(checkpoint, spec, items), dtype=np.float32)


def score_reference(family: Family, checkpoint: str | Path, spec: ModelSpec,
                    pairs: list[tuple[str, str]]) -> np.ndarray:
    """Rerankers: the reference's score per (query, document) pair, activation applied."""
    scores = exporter(family).reference_pairs(checkpoint, spec, pairs)
    return np.asarray(scores, dtype=np.float32).reshape(-1)


def texts_only(items: Items) -> list[str]:
    """The texts of a text family's items; an image is a caller's mistake."""
    if any(image is not None or text is None for text, image in items):
        raise ValueError("this family embeds text only")
    return [str(text) for text, _ in items]
