"""ColBERT (PyLate) models: one text tower whose graph gives a normalised vector per token
(models/colbert.py). The rows are shaped here as PyLate's tokenize does: the [Q] or [D]
marker after CLS; a query (prompt_name "query") cut to query_length and padded to it with
[MASK] (query expansion, attended only where the model says so), every vector kept; a
document's vectors less its skiplist's (punctuation) and padding."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from models.spec import LateInteraction
from runtime.adapters.base import Capability
from runtime.adapters.heads import HeadsAdapter, Output, token_rows
from runtime.adapters.text import TextAdapter
from runtime.backends.base import pad_batch
from runtime.errors import InvalidRequestError


class ColbertRow:
    """Ids as the graph runs them; `attended` leading positions in the attention mask;
    `keep`: the positions whose vectors are answered (None: all)."""

    def __init__(self, ids: list[int], attended: int, keep: np.ndarray | None):
        self.ids, self.attended, self.keep = ids, attended, keep

    def __len__(self) -> int:
        return len(self.ids)


class ColbertAdapter(HeadsAdapter, TextAdapter):
    capabilities = frozenset({Capability.MULTI_VECTOR, Capability.PLAIN_TEXT_ROWS,
                              Capability.TRUNCATE_LEFT})
    outputs = (Output.MULTI_VECTOR,)

    @property
    def late(self) -> LateInteraction:
        assert self.spec.late is not None  # a ColBERT spec always has it (models/colbert.py)
        return self.spec.late

    def shape_rows(self, rows: list[list[int]], prompt_name: str | None,
                   truncate: bool) -> list[Any]:
        query = prompt_name == "query"
        return [self._query(row, i, truncate) if query else self._document(row)
                for i, row in enumerate(rows)]

    def _document(self, row: list[int]) -> ColbertRow:
        ids = self._marked(row, self.late.document_prefix_id)
        keep = np.flatnonzero(~np.isin(ids, self.late.skiplist_ids or [-1]))
        return ColbertRow(ids, len(ids), keep)

    def _query(self, row: list[int], index: int, truncate: bool) -> ColbertRow:
        late = self.late
        limit = late.query_length - (late.query_prefix_id >= 0)
        if len(row) > limit:
            if not truncate:
                raise InvalidRequestError(
                    f"input[{index}] has {len(row)} tokens, more than this model's query "
                    f"maximum of {limit}. Shorten it, or send truncate: true.",
                    param="input", code="context_length_exceeded")
            row = row[:limit - 1] + row[-1:]  # the tokenizer's cut: content, then [SEP]
        ids = self._marked(row, late.query_prefix_id)
        attended = len(ids)
        if late.expand_queries:
            ids += [late.expansion_id] * (late.query_length - len(ids))
            attended = len(ids) if late.attend_expansion else attended
        return ColbertRow(ids, attended, None)

    @staticmethod
    def _marked(row: list[int], marker: int) -> list[int]:
        return row[:1] + [marker] + row[1:] if marker >= 0 else list(row)

    def feeds(self, tower: str, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        ids, _ = pad_batch([row.ids for row in rows])
        attended = np.fromiter((row.attended for row in rows), dtype=np.int64, count=len(rows))
        mask = np.arange(ids.shape[1], dtype=np.int64)[None, :] < attended[:, None]
        return {"input_ids": ids, "attention_mask": mask.astype(np.int64)}

    def split(self, tower: str, rows: Sequence[Any], output: np.ndarray) -> Any:
        return token_rows(output, rows)

    def select(self, output: Output, results: Any, rows: Sequence[Any]) -> list[Any]:
        return [np.ascontiguousarray(r if row.keep is None else r[row.keep])
                for r, row in zip(results, rows)]

    def probe_row(self, tokens: int) -> Any:
        return ColbertRow([0] * tokens, tokens, None)

    async def warm_up(self, stages: Any) -> None:
        await stages.submit(self.towers[0].name, [self.probe_row(2)])
