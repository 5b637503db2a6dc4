"""A part's Parquet columns: id, the vector in each asked type, tokens (and chunks).

- `vector`: float32, a fixed-size list of the model's dims (`--embedding-types float`, the
  default);
- `vector_int8` / `vector_uint8`: fixed-size lists of int8 / uint8, dims long;
- `vector_binary` / `vector_ubinary`: fixed-size lists of int8 / uint8, dims / 8 long (the
  packed sign bits, as the server's `binary` / `ubinary`);
- `tokens`: the tokens embedded for the row (every chunk's, with `--chunk-long-inputs`);
- `chunks`: with `--chunk-long-inputs` only, the row's chunk count.
Types as runtime/quantization.py defines them (quantize_embeddings' definitions).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

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


def part_table(ids: Sequence[Any], vectors: np.ndarray | None, pieces: Pieces, dims: int,
               kinds: Sequence[str], quantizer: Quantizer, chunked: bool) -> Any:
    """The part's table: `vectors` (rows, dims) float32 pooled per row, None: no row."""
    pa = require("pyarrow")
    columns: dict[str, Any] = {"id": pa.array(list(ids))}
    for kind in kinds:
        values = quantizer.apply(vectors, kind) if vectors is not None else None
        columns[column_name(kind)] = vector_column(values, kind, dims)
    columns["tokens"] = pa.array([sum(map(len, rows)) for rows in pieces], pa.int32())
    if chunked:
        columns["chunks"] = pa.array([len(rows) for rows in pieces], pa.int32())
    return pa.table(columns)
