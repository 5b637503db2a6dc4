"""A part's Parquet columns: id, the output's columns, tokens (and chunks).

The output (runtime/adapters/heads.py):
- dense: the vector in each asked type (`--embedding-types`):
  - `vector`: float32, a fixed-size list of the model's dims (`float`, the default);
  - `vector_int8` / `vector_uint8`: fixed-size lists of int8 / uint8, dims long;
  - `vector_binary` / `vector_ubinary`: fixed-size lists of int8 / uint8, dims / 8 long (the
    packed sign bits, as the server's `binary` / `ubinary`);
  types as runtime/quantization.py defines them (quantize_embeddings' definitions);
- sparse: `indices` (list of int32, ascending) and `values` (list of float32), the nonzero
  weights of each row;
- multi_vector: `vectors`, a list of fixed-size float32 lists: each row's token vectors in
  order, padding removed.
Every table also has `tokens`: the tokens embedded for the row (every chunk's, with
`--chunk-long-inputs`), and with `--chunk-long-inputs` `chunks`, the row's chunk count.
Built from flat numpy buffers and offsets: no Python object per element.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from runtime.adapters.heads import Output
from runtime.bulk.deps import require
from runtime.pipeline.chunking import Pieces
from runtime.quantization import FLOAT, Quantizer

ARROW_TYPES = {"float32": "float32", "int8": "int8", "uint8": "uint8"}


def column_name(kind: str) -> str:
    return "vector" if kind == FLOAT else f"vector_{kind}"


def width(kind: str, dims: int) -> int:
    return (dims + 7) // 8 if kind.endswith("binary") else dims


def vector_column(values: np.ndarray | None, kind: str, dims: int) -> Any:
    """(rows, width) -> a fixed-size list column of the type's element type."""
    pa = require("pyarrow")
    dtype = {"float": np.float32, "int8": np.int8, "uint8": np.uint8, "binary": np.int8,
             "ubinary": np.uint8}[kind]
    flat = (values.reshape(-1) if values is not None else np.zeros(0, dtype=dtype))
    arrow = pa.array(flat.astype(dtype, copy=False), getattr(pa, ARROW_TYPES[dtype.__name__])())
    return pa.FixedSizeListArray.from_arrays(arrow, width(kind, dims))


def _offsets(lengths: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32)


def _flat(parts: Sequence[np.ndarray], dtype: Any) -> np.ndarray:
    return (np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in parts])
            if len(parts) else np.zeros(0, dtype=dtype))


def head_columns(output: Output, rows: Any, dims: int) -> dict[str, Any]:
    """Sparse or multi-vector columns: `rows`, one SparseVector / (tokens, dims) array per
    row; None when the part has no row to embed."""
    pa = require("pyarrow")
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


def part_table(ids: Sequence[Any], output: Output, rows: Any, pieces: Pieces, dims: int,
               kinds: Sequence[str], quantizer: Quantizer, chunked: bool) -> Any:
    """The part's table: `rows` the dense (rows, dims) float32 vectors pooled per row, or the
    sparse / multi-vector rows (head_columns); None: no row."""
    pa = require("pyarrow")
    columns: dict[str, Any] = {"id": pa.array(list(ids))}
    if output is Output.DENSE:
        for kind in kinds:
            values = quantizer.apply(rows, kind) if rows is not None else None
            columns[column_name(kind)] = vector_column(values, kind, dims)
    else:
        columns.update(head_columns(output, rows, dims))
    columns["tokens"] = pa.array([sum(map(len, p)) for p in pieces], pa.int32())
    if chunked:
        columns["chunks"] = pa.array([len(p) for p in pieces], pa.int32())
    return pa.table(columns)
