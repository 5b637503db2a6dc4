"""The bulk command's inputs, read as a stream: JSONL, CSV or Parquet, never whole.

Each reader yields (ids, texts) batches of raw values as the file holds them (a text may be
null, a number, anything: runtime/bulk/chunks.py decides what is rejected, and why);
`rechunk` cuts them into chunks of exactly `rows` input rows, numbered from 0, so chunk k
always holds input rows [k * rows, (k + 1) * rows) whatever the reader's batch sizes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from runtime.bulk.deps import require
from runtime.errors import ApplianceError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl", ".csv": "csv"}
SAMPLES = 64  # blocks hashed across the file, besides its head and tail
SAMPLE_BYTES = 1 << 16
Batch = tuple[list[Any] | None, list[Any]]  # ids (None: the row numbers), texts


class InputError(ApplianceError):
    """The input cannot be read as asked: an unknown format, a missing column."""


@dataclass(frozen=True)
class Source:
    path: Path
    format: str  # parquet | jsonl | csv
    text_column: str = "text"
    id_column: str | None = None  # None: the row number is the id

    @classmethod
    def of(cls, path: str | Path, text_column: str = "text", id_column: str | None = None,
           format: str | None = None) -> "Source":
        path = Path(path)
        found = format or FORMATS.get(path.suffix.lower())
        if found not in ("parquet", "jsonl", "csv"):
            raise InputError(f"cannot tell the format of {path}: name it .parquet, .jsonl or "
                             ".csv, or pass --format")
        if not path.is_file():
            raise InputError(f"no input file {path}")
        return cls(path, found, text_column, id_column)

    @property
    def columns(self) -> list[str]:
        return [self.text_column] + ([self.id_column] if self.id_column else [])


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # the input row number of its first row
    ids: list[Any]
    texts: list[Any]


def read_batches(source: Source, rows: int) -> Iterator[Batch]:
    """The input as (ids, texts) batches of about `rows` rows each."""
    reader = {"parquet": _parquet, "jsonl": _jsonl, "csv": _csv}[source.format]
    return reader(source, rows)


def _columns(source: Source, batch: Any) -> Batch:
    texts = batch.column(source.text_column).to_pylist()
    return (batch.column(source.id_column).to_pylist() if source.id_column else None), texts


def _check_columns(source: Source, present: list[str]) -> None:
    missing = [c for c in source.columns if c not in present]
    if missing:
        raise InputError(f"{source.path} has no column {', '.join(map(repr, missing))}; "
                         f"its columns: {', '.join(present)}")


def _parquet(source: Source, rows: int) -> Iterator[Batch]:
    parquet = require("pyarrow.parquet")
    file = parquet.ParquetFile(source.path)
    _check_columns(source, file.schema_arrow.names)
    for batch in file.iter_batches(batch_size=rows, columns=source.columns):
        yield _columns(source, batch)


def _csv(source: Source, rows: int) -> Iterator[Batch]:
    pa, csv = require("pyarrow"), require("pyarrow.csv")
    with source.path.open("rb") as fh:
        present = csv.open_csv(fh).schema.names
    _check_columns(source, present)
    # Texts stay strings even when a file's first block looks numeric.
    options = csv.ConvertOptions(include_columns=source.columns,
                                 column_types={source.text_column: pa.string()})
    for batch in csv.open_csv(source.path, convert_options=options):
        yield _columns(source, batch)


def _jsonl(source: Source, rows: int) -> Iterator[Batch]:
    """Line by line with the json module: a bad line is one rejected row, not a failed read."""
    ids: list[Any] = []
    texts: list[Any] = []
    with source.path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                record = {source.text_column: BadLine(line.strip()[:80])}
            texts.append(record.get(source.text_column))
            ids.append(record.get(source.id_column) if source.id_column else None)
            if len(texts) >= rows:
                yield (ids if source.id_column else None), texts
                ids, texts = [], []
    if texts:
        yield (ids if source.id_column else None), texts


@dataclass(frozen=True)
class BadLine:
    """A JSONL line that is not a JSON object: rejected with its start."""

    start: str


def rechunk(batches: Iterable[Batch], rows: int) -> Iterator[Chunk]:
    """Chunks of exactly `rows` rows (the last may be shorter); at most `rows` plus one
    batch are held at a time. Without an id column, the row number is the id."""
    ids: list[Any] = []
    texts: list[Any] = []
    start = index = 0
    for batch_ids, batch_texts in batches:
        first = start + len(texts)
        ids.extend(range(first, first + len(batch_texts)) if batch_ids is None else batch_ids)
        texts.extend(batch_texts)
        while len(texts) >= rows:
            yield Chunk(index, start, ids[:rows], texts[:rows])
            ids, texts = ids[rows:], texts[rows:]
            index, start = index + 1, start + rows
    if texts:
        yield Chunk(index, start, ids, texts)


def estimate_rows(source: Source) -> int:
    """Rows in the input for the progress bar: exact for Parquet, lines for text formats."""
    if source.format == "parquet":
        return int(require("pyarrow.parquet").ParquetFile(source.path).metadata.num_rows)
    lines = 0
    with source.path.open("rb") as fh:
        while block := fh.read(1 << 22):
            lines += block.count(b"\n")
    return max(0, lines - (1 if source.format == "csv" else 0))


def fingerprint(path: Path) -> str:
    """sha256 over the size, head, tail and SAMPLES blocks across the file: a changed input
    is noticed without reading a large corpus whole at every start."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    offsets = {0, max(0, size - SAMPLE_BYTES)} | {size * i // SAMPLES for i in range(SAMPLES)}
    with path.open("rb") as fh:
        for offset in sorted(offsets):
            fh.seek(offset)
            digest.update(fh.read(SAMPLE_BYTES))
    return digest.hexdigest()
