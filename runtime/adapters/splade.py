"""SPLADE sparse encoders: one text tower whose graph returns the pooled vocabulary-sized
weights per text (models/splade.py); each row's answer is its nonzero entries, taken on the
batcher's thread. It has no dense vector to serve: dense requests are refused by the
pipeline (no EMBED_TEXT)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from runtime.adapters.base import Capability
from runtime.adapters.heads import HeadsAdapter, Output, SparseVector, sparse_from_dense
from runtime.adapters.text import TextAdapter


class SpladeAdapter(HeadsAdapter, TextAdapter):
    capabilities = frozenset({Capability.SPARSE, Capability.PLAIN_TEXT_ROWS,
                              Capability.TRUNCATE_LEFT})
    outputs = (Output.SPARSE,)

    def split(self, tower: str, rows: Sequence[Any], output: np.ndarray) -> Any:
        """Each row's nonzero weights, on the batcher's thread (a scan of the vocabulary
        per row, kept off the event loop)."""
        return sparse_from_dense(np.asarray(output, dtype=np.float32))

    def select(self, output: Output, results: Any, rows: Sequence[Sequence[int]]
               ) -> list[SparseVector]:
        return list(results)
