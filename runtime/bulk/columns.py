"""A chunk's output rows as an Arrow table, per output (runtime/adapters/heads.py):

- dense: `vector`, a fixed-size list of float32 (the model's dims);
- sparse: `indices` (list of int32, ascending) and `values` (list of float32), the nonzero
  weights of each row;
- multi_vector: `vectors`, a list of fixed-size float32 lists: each row's token vectors in
  order, padding removed.

Every table also has `id` and `tokens` (the row's token count). Built from flat numpy
buffers and offsets: no Python object per element."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from runtime.adapters.heads import Output
from runtime.bulk.deps import require


def _offsets(lengths: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32)


def _flat(parts: Sequence[np.ndarray], dtype: Any) -> np.ndarray:
    return (np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in parts])
            if len(parts) else np.zeros(0, dtype=dtype))


def output_columns(output: Output, rows: Any, dims: int) -> dict[str, Any]:
    """`rows`: the dense (n, dims) vectors, or one SparseVector / (tokens, dims) array per
    row; None when the chunk has no row to embed."""
    pa = require("pyarrow")
    if output is Output.DENSE:
        flat = _flat([] if rows is None else [rows], np.float32)
        return {"vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dims)}
    rows = rows or []
    if output is Output.SPARSE:
        offsets = pa.array(_offsets([len(r.indices) for r in rows]), pa.int32())
        indices = pa.array(_flat([r.indices for r in rows], np.int32), pa.int32())
        values = pa.array(_flat([r.values for r in rows], np.float32), pa.float32())
        return {"indices": pa.ListArray.from_arrays(offsets, indices),
                "values": pa.ListArray.from_arrays(offsets, values)}
    vectors = pa.FixedSizeListArray.from_arrays(
        pa.array(_flat(rows, np.float32), pa.float32()), dims)
    return {"vectors": pa.ListArray.from_arrays(
        pa.array(_offsets([len(r) for r in rows]), pa.int32()), vectors)}


def chunk_table(ids: Sequence[Any], output: Output, rows: Any, dims: int,
                tokens: list[int]) -> Any:
    pa = require("pyarrow")
    return pa.table({"id": pa.array(list(ids)), **output_columns(output, rows, dims),
                     "tokens": pa.array(tokens, pa.int32())})
