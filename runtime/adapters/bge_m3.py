"""bge-m3: one text tower whose graph gives, per token, one vector and one sparse weight
(builder/families/bge_m3.py packs them as (batch, sequence, dims + 1)): at position 0 the
normalised CLS vector (the dense embedding), at positions 1.. the normalised ColBERT
vectors, and in the last column every token's relu'd sparse weight. So one forward pass
serves all three heads; each request takes the one it asks for from the rows."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from runtime.adapters.base import Capability, Work
from runtime.adapters.heads import HeadsAdapter, Output, max_per_token, token_rows
from runtime.adapters.text import TextAdapter


class BgeM3Adapter(HeadsAdapter, TextAdapter):
    capabilities = frozenset({Capability.EMBED_TEXT, Capability.SPARSE, Capability.MULTI_VECTOR,
                              Capability.PLAIN_TEXT_ROWS, Capability.TRUNCATE_LEFT})
    outputs = (Output.DENSE, Output.SPARSE, Output.MULTI_VECTOR)

    def split(self, tower: str, rows: Sequence[Any], output: np.ndarray) -> Any:
        """Each row's own tokens (padding removed): a list, as the rows' lengths differ."""
        return token_rows(output, rows)

    def combine(self, work: Work, outputs: Mapping[str, Any], count: int) -> np.ndarray:
        """The dense embeddings (what /v1/embeddings serves by default): position 0."""
        (rows,) = outputs.values()
        return np.stack([row[0, :self.spec.dims] for row in rows])

    def select(self, output: Output, results: Any, rows: Sequence[Sequence[int]]) -> list[Any]:
        if output is Output.SPARSE:
            return max_per_token(rows, [r[:, -1] for r in results], self.spec.sparse_skip_ids)
        if output is Output.MULTI_VECTOR:  # the tokens after the first (CLS)
            return [np.ascontiguousarray(r[1:, :self.spec.colbert_dims]) for r in results]
        return [np.ascontiguousarray(r[0, :self.spec.dims]) for r in results]
