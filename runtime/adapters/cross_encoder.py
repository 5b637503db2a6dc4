"""Cross-encoder rerankers: one row per (query, document) pair, tokenised through the
model's own pair template (token type ids where the graph takes them); the graph answers
one raw logit per row, and the pipeline applies the spec's activation.

A sequence-classification model: besides pairs, a text alone gets its class logits
(SGLang's /classify). It embeds nothing: the pipeline refuses embedding requests first.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from runtime.adapters.base import TEXT, Capability, PairScoring, Stages, Work


class PairRow:
    """One tokenised pair on the batcher; len() (its cost in the token budget and in usage)
    is the query's and the document's tokens together."""

    def __init__(self, ids: list[int], types: list[int]):
        self.ids = ids
        self.types = types

    def __len__(self) -> int:
        return len(self.ids)


class CrossEncoderAdapter(PairScoring):
    capabilities = frozenset({Capability.SCORE_PAIRS, Capability.CLASSIFY})

    async def prepare_pairs(self, query: str, documents: Sequence[str], truncate: bool,
                            stages: Stages, instruction: str | None = None) -> Work:
        """`instruction` is for instruction-following rerankers; a cross-encoder has none."""
        encoded = await stages.tokenize_pairs(query, documents, truncate)
        return Work({TEXT: [PairRow(ids, types) for ids, types in encoded]})

    async def prepare_single(self, texts: Sequence[str], truncate: bool, stages: Stages
                             ) -> Work:
        """Texts classified alone (SGLang's /classify): one sequence each, through the
        model's own single-text template, token types all 0."""
        encoded = await stages.tokenize(texts, truncate)
        return Work({TEXT: [PairRow(ids, [0] * len(ids)) for ids in encoded]})

    def feeds(self, tower: str, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        feeds = super().feeds(tower, [row.ids for row in rows])
        if "token_type_ids" in self.spec.inputs:
            types = np.zeros_like(feeds["input_ids"])
            for b, row in enumerate(rows):
                types[b, :len(row.types)] = row.types
            feeds["token_type_ids"] = types
        return feeds

    def probe_row(self, tokens: int) -> Any:
        return PairRow([0] * tokens, [0] * tokens)

    async def warm_up(self, stages: Stages) -> None:
        await stages.submit(self.towers[0].name, [PairRow([0, 0], [0, 1])])
