"""The host side of the retrieval heads: sparse rows from dense weights, bge-m3's max per
token id, the batcher's ragged rows, and which output a request gets. Each is checked
against a plain Python loop over the same data."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from runtime.adapters.heads import Output, max_per_token, sparse_from_dense
from runtime.errors import InvalidRequestError
from runtime.pipeline.rows import gather_rows, place_rows
from runtime.pipeline.heads import resolve_output


def test_sparse_from_dense_keeps_each_rows_nonzeros() -> None:
    rng = np.random.default_rng(0)
    weights = np.maximum(rng.normal(size=(5, 40)), 0).astype(np.float32)
    weights[2] = 0  # a row with no weight at all
    rows = sparse_from_dense(weights)
    assert len(rows) == 5 and len(rows[2].indices) == 0
    for row, dense in zip(rows, weights):
        want = [i for i, w in enumerate(dense) if w != 0]
        assert row.indices.tolist() == want
        assert row.values.tolist() == [float(dense[i]) for i in want]


def test_max_per_token_id_drops_skipped_ids_and_zero_weights() -> None:
    rng = np.random.default_rng(1)
    rows = [rng.integers(0, 12, size=n).tolist() for n in (9, 1, 14, 3)]
    weights = [np.maximum(rng.normal(size=len(r)), 0).astype(np.float32) for r in rows]
    skip = (0, 2)
    got = max_per_token(rows, weights, skip)
    for row, ids, w in zip(got, rows, weights):
        want: dict[int, float] = {}
        for token, weight in zip(ids, w):  # FlagEmbedding's loop
            if token not in skip and weight > 0:
                want[token] = max(want.get(token, 0.0), float(weight))
        assert row.indices.tolist() == sorted(want)
        assert row.values.tolist() == [want[k] for k in sorted(want)]


def test_rows_of_one_shape_stack_and_ragged_rows_stay_a_list() -> None:
    same = [np.full(3, i, dtype=np.float32) for i in range(4)]
    assert gather_rows(same).shape == (4, 3)
    ragged = [np.zeros((n, 2), dtype=np.float32) for n in (3, 1, 2)]
    assert [r.shape for r in gather_rows(ragged)] == [(3, 2), (1, 2), (2, 2)]
    sparse = sparse_from_dense(np.eye(3, dtype=np.float32))  # SPLADE's rows: not arrays
    gathered = gather_rows(sparse)
    assert isinstance(gathered, list) and all(a is b for a, b in zip(gathered, sparse))


def test_planned_batches_land_in_input_order() -> None:
    plan = [[2, 0], [1, 3]]
    vectors = [np.array([[2.0], [0.0]]), np.array([[1.0], [3.0]])]
    assert place_rows(plan, vectors, 4)[:, 0].tolist() == [0, 1, 2, 3]
    tokens = [[np.zeros((2, 1)), np.zeros((5, 1))], [np.zeros((1, 1)), np.zeros((3, 1))]]
    placed = place_rows(plan, tokens, 4)
    assert [len(r) for r in placed] == [5, 1, 2, 3]


def served(adapter: Any) -> Any:
    return SimpleNamespace(adapter=adapter)


def test_the_default_output_is_the_models_first() -> None:
    from runtime.adapters.bge_m3 import BgeM3Adapter
    from runtime.adapters.splade import SpladeAdapter

    splade = served(SpladeAdapter.__new__(SpladeAdapter))
    m3 = served(BgeM3Adapter.__new__(BgeM3Adapter))
    from runtime.adapters.cross_encoder import CrossEncoderAdapter
    from runtime.adapters.text import TextAdapter

    dense = served(TextAdapter.__new__(TextAdapter))
    assert [resolve_output(e, None) for e in (splade, m3, dense)] == [
        Output.SPARSE, Output.DENSE, Output.DENSE]
    reranker = served(CrossEncoderAdapter.__new__(CrossEncoderAdapter))
    assert resolve_output(reranker, None) is Output.DENSE  # the dense path's 400 says why
    with pytest.raises(InvalidRequestError, match="a reranker: it has no sparse output"):
        resolve_output(reranker, "sparse")
    assert resolve_output(m3, "multi_vector") is Output.MULTI_VECTOR
    with pytest.raises(InvalidRequestError, match="no sparse output; it gives dense"):
        resolve_output(dense, "sparse")
    with pytest.raises(InvalidRequestError, match="must be one of"):
        resolve_output(m3, "colbert")
