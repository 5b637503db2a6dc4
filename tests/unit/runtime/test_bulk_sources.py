"""The bulk command's pure parts: streamed readers, chunk boundaries, rejects, the part log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.bulk.chunks import reject_reason
from runtime.bulk.sources import (BadLine, InputError, Source, estimate_rows, fingerprint,
                                  read_batches, rechunk)
from runtime.bulk.state import PARTS, PartLog

TEXTS = [f"row {i} " + "word " * (i % 7) for i in range(103)]


def write_inputs(root: Path) -> dict[str, Path]:
    """The same 103 rows as Parquet (row groups of 10), JSONL and CSV."""
    ids = [f"d{i}" for i in range(len(TEXTS))]
    paths = {"parquet": root / "in.parquet", "jsonl": root / "in.jsonl", "csv": root / "in.csv"}
    pq.write_table(pa.table({"id": ids, "text": TEXTS}), paths["parquet"], row_group_size=10)
    paths["jsonl"].write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                                      for i, t in zip(ids, TEXTS)))
    paths["csv"].write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in zip(ids, TEXTS)))
    return paths


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_every_format_streams_the_same_rows_in_bounded_batches(tmp_path: Path,
                                                               fmt: str) -> None:
    source = Source.of(write_inputs(tmp_path)[fmt], "text", "id")
    batches = list(read_batches(source, 16))
    if fmt != "csv":  # CSV batches are bounded in bytes (pyarrow's block size), not rows
        assert max(len(texts) for _, texts in batches) == 16
    chunks = list(rechunk(iter(batches), 25))
    assert [c.index for c in chunks] == [0, 1, 2, 3, 4]
    assert [(c.start, len(c.texts)) for c in chunks] == [(0, 25), (25, 25), (50, 25),
                                                          (75, 25), (100, 3)]
    assert [t for c in chunks for t in c.texts] == TEXTS
    assert [i for c in chunks for i in c.ids] == [f"d{i}" for i in range(len(TEXTS))]
    assert estimate_rows(source) == len(TEXTS)


def test_rechunk_reads_no_further_than_the_chunk_it_yields() -> None:
    """Streaming, asserted structurally: a chunk is yielded as soon as its rows are in."""
    pulled: list[int] = []

    def reader() -> Iterator[tuple[list[Any] | None, list[Any]]]:
        for n in range(100):
            pulled.append(n)
            yield None, [f"t{n}-{k}" for k in range(10)]

    chunks = rechunk(reader(), 25)
    first = next(chunks)
    assert len(pulled) == 3 and len(first.texts) == 25
    assert first.ids == list(range(25))  # no id column: the row number
    second = next(chunks)
    assert len(pulled) == 5 and second.ids == list(range(25, 50))


def test_reasons_for_rejected_rows() -> None:
    assert reject_reason("a text") is None
    assert reject_reason(None) == "null or missing text"
    assert reject_reason("  \n") == "empty text"
    assert reject_reason(5) == "not text (int)"
    assert reject_reason(["a"]) == "not text (list)"
    assert reject_reason(BadLine("{oops")) == "not a JSON object: '{oops'"


def test_a_bad_jsonl_line_is_one_row_not_a_failed_read(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "fine"}\nnot json\n[1, 2]\n{"other": 1}\n')
    (ids, texts), = read_batches(Source.of(path), 100)
    assert ids is None
    assert texts[0] == "fine" and texts[3] is None
    assert texts[1] == BadLine("not json") and texts[2] == BadLine("[1, 2]")


def test_unknown_formats_and_missing_columns_are_named(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    with pytest.raises(InputError, match=r"\.parquet, \.jsonl or \.csv"):
        Source.of(tmp_path / "in.txt")
    paths = write_inputs(tmp_path)
    for fmt in ("parquet", "csv"):
        with pytest.raises(InputError, match=r"no column 'body'; its columns: id, text"):
            list(read_batches(Source.of(paths[fmt], "body"), 10))


def test_the_input_fingerprint_follows_the_content_not_the_file(tmp_path: Path) -> None:
    path = write_inputs(tmp_path)["jsonl"]
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    assert fingerprint(path) == fingerprint(copy)
    copy.write_bytes(b"X" + path.read_bytes()[1:])
    assert fingerprint(path) != fingerprint(copy)


def test_the_part_log_resumes_ignores_a_torn_line_and_refuses_another_job(
        tmp_path: Path) -> None:
    table = pa.table({"id": ["a"], "vector": [[1.0]], "tokens": [3]})
    log = PartLog(tmp_path, {"input": "x"})
    log.commit(0, (0, 2), table, [{"row": 1, "id": "b", "reason": "empty text"}], 3)
    with (tmp_path / PARTS).open("a") as fh:
        fh.write('{"part": 1, "rows": [2,')  # a crash mid-commit
    again = PartLog(tmp_path, {"input": "x"})
    assert again.committed(0) and not again.committed(1) and not again.complete
    assert again.totals() == {"written": 1, "rejected": 1, "tokens": 3}
    assert pq.read_table(tmp_path / "part-000000.parquet").equals(table)
    assert json.loads((tmp_path / "rejects-000000.jsonl").read_text()) == {
        "row": 1, "id": "b", "reason": "empty text"}
    with pytest.raises(InputError, match="another job"):
        PartLog(tmp_path, {"input": "y"})
