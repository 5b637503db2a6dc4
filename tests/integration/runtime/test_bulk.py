"""The bulk command on the real MiniLM artifact: vectors, rejects, resume, idempotence."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.bulk import local
from runtime.bulk.chunks import ChunkEmbedder, EmbedSettings
from runtime.bulk.local import BulkJob, run_local
from runtime.pipeline.batcher import plan_batches
from runtime.bulk.sources import Chunk, Source
from runtime.bulk.state import PartLog
from runtime.pipeline.embedder import Embedder
from tests.helpers import ROOT

CHUNK = 16
WORDS = ("the council said on Tuesday that rainfall across the state was well below the "
         "average for the season and farmers expect a smaller wheat harvest").split()
BAD = [("bad-empty", ""), ("bad-number", 7), ("bad-null", None)]


def corpus(n: int = 90) -> list[tuple[str, Any]]:
    """Texts of 1 to 40 words (mixed lengths: batches pad differently), then bad rows."""
    rows: list[tuple[str, Any]] = [
        (f"d{i}", " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(1 + i * 13 % 40)))
        for i in range(n)]
    return rows[:40] + BAD + rows[40:]


def write_jsonl(path: Path, rows: list[tuple[str, Any]]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
    return path


def read_output(out: Path) -> pa.Table:
    tables = [pq.read_table(p) for p in sorted(out.glob("*.parquet"))]
    return pa.concat_tables(tables).sort_by("id")


def vectors(table: pa.Table) -> np.ndarray:
    flat = table.column("vector").combine_chunks().flatten().to_numpy()
    return flat.reshape(table.num_rows, -1)


def job(source: Path, out: Path, artifact: Path) -> BulkJob:
    return BulkJob(Source.of(source, "text", "id"), out, artifact, EmbedSettings(threads=1),
                   CHUNK, progress=False)


def reference(artifact: Path, rows: list[tuple[str, Any]]) -> dict[str, np.ndarray]:
    """The Embedder's embed_texts, chunk by chunk (a chunk's good rows as one request), as
    the server would answer them."""
    async def run() -> dict[str, np.ndarray]:
        embedder = Embedder.load(artifact, EmbedSettings(threads=1).runtime_config(CHUNK))
        await embedder.start()
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(rows), CHUNK):
            good = [(i, t) for i, t in rows[start:start + CHUNK] if isinstance(t, str) and t]
            result = await embedder.embed_texts([t for _, t in good])
            out.update(zip([i for i, _ in good], result.vectors))
        await embedder.close()
        return out
    return asyncio.run(run())


@pytest.fixture(scope="module")
def clean_run(minilm_artifact: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bulk")
    source = write_jsonl(root / "in.jsonl", corpus())
    run_local(job(source, root / "out", minilm_artifact))
    return source, root / "out"


def test_vectors_are_the_embedders_and_bad_rows_are_rejected(
        clean_run: tuple[Path, Path], minilm_artifact: Path) -> None:
    source, out = clean_run
    table = read_output(out)
    expected = reference(minilm_artifact, corpus())
    assert sorted(table.column("id").to_pylist()) == sorted(expected)
    got = dict(zip(table.column("id").to_pylist(), vectors(table)))
    for key, vector in expected.items():
        assert got[key].tobytes() == vector.astype(np.float32).tobytes(), key
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 384)
    norms = np.linalg.norm(vectors(table), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)  # MiniLM's normalised output
    for part in out.glob("part-*.parquet"):  # floats written plain: no dictionary pages
        column = pq.ParquetFile(part).metadata.row_group(0).column(1)
        assert column.path_in_schema == "vector.list.element"
        assert column.dictionary_page_offset is None and column.statistics is None
    rejects = [json.loads(line) for p in sorted(out.glob("rejects-*.jsonl"))
               for line in p.read_text().splitlines()]
    assert rejects == [{"row": 40, "id": "bad-empty", "reason": "empty text"},
                       {"row": 41, "id": "bad-number", "reason": "not text (int)"},
                       {"row": 42, "id": "bad-null", "reason": "null or missing text"}]


def test_token_counts_are_the_tokenizers(clean_run: tuple[Path, Path],
                                         minilm_artifact: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_artifact / "tokenizer.json"))
    table = read_output(clean_run[1])
    texts = dict(corpus())
    for key, tokens in zip(table.column("id").to_pylist(), table.column("tokens").to_pylist()):
        assert tokens == len(tokenizer.encode(texts[key]).ids)


def test_a_second_run_does_nothing(clean_run: tuple[Path, Path], minilm_artifact: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    source, out = clean_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    monkeypatch.setattr(local, "ChunkEmbedder", None)  # loading a model would fail
    summary = run_local(job(source, out, minilm_artifact))
    assert (summary.rows, summary.done_before, summary.written, summary.rejected,
            summary.load_seconds) == (93, 93, 90, 3, 0.0)
    # Not "0 rows done by an earlier run; 0 rows in 0.0 s": everything was, nothing now.
    assert summary.line(out) == (
        f"nothing to do: an earlier run did all 93 input rows: 90 rows embedded, 3 rejected "
        f"({out}/rejects-*.jsonl); {summary.tokens:,} tokens; output {out}/*.parquet")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_an_interrupted_run_resumes_where_it_stopped(
        clean_run: tuple[Path, Path], minilm_artifact: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    source, clean = clean_run
    commit, embedded = PartLog.commit, []

    def failing_commit(self: PartLog, index: int, *args: Any) -> None:
        if index == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C after part 2
        commit(self, index, *args)

    monkeypatch.setattr(PartLog, "commit", failing_commit)
    with pytest.raises(KeyboardInterrupt):
        run_local(job(source, tmp_path / "out", minilm_artifact))
    assert sorted(p.name for p in (tmp_path / "out").glob("part-*")) == [
        "part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    monkeypatch.setattr(PartLog, "commit", commit)
    submit = ChunkEmbedder.submit

    def recording(self: ChunkEmbedder, chunk: Any) -> Any:
        embedded.append(chunk.index)
        return submit(self, chunk)

    monkeypatch.setattr(ChunkEmbedder, "submit", recording)
    summary = run_local(job(source, tmp_path / "out", minilm_artifact))
    assert embedded == [3, 4, 5]
    assert summary.done_before == 3 * CHUNK and summary.written == 90
    assert 0 < summary.load_seconds < summary.seconds
    assert f"(model load {summary.load_seconds:.1f} s, " in summary.line(tmp_path / "out")
    assert read_output(tmp_path / "out").equals(read_output(clean))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_killed_process_resumes_to_the_embedders_vectors(
        minilm_artifact: Path, tmp_path: Path, sig: signal.Signals) -> None:
    """kill -9 (a part may be half written) or Ctrl-C mid-run, then the same command again.

    The first run is held after two committed parts (tests/fixtures/held_bulk.py), so the
    signal always lands mid-run, however fast or loaded the machine."""
    rows = corpus(600)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    args = [str(source), str(tmp_path / "out"), "--model-path", str(minilm_artifact),
            "--id-column", "id", "--threads", "1", "--chunk-rows", str(CHUNK), "--no-progress"]
    held = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fixtures.held_bulk", str(held), *args],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "out" / "_bulk_parts.jsonl"
    deadline = time.monotonic() + 120
    while not held.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, sig)
    stderr = proc.communicate(timeout=60)[1]
    done = parts.read_text().count("\n")
    if sig == signal.SIGINT:  # one line saying where it stands; the queued chunks dropped
        assert proc.returncode == 130, stderr
        assert (f"interrupted: {done} parts ({done * CHUNK:,} input rows) are committed in "
                f"{tmp_path / 'out'}; run the same command again to resume") in stderr
        assert "Traceback" not in stderr and "Task was destroyed" not in stderr, stderr
    assert 2 <= done < len(rows) // CHUNK
    cmd = [sys.executable, "-m", "runtime.bulk", *args]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{done * CHUNK:,} rows done by an earlier run" in result.stderr
    table = read_output(tmp_path / "out")
    expected = reference(minilm_artifact, rows)
    assert table.column("id").to_pylist() == sorted(expected)
    for key, vector in zip(table.column("id").to_pylist(), vectors(table)):
        assert vector.tobytes() == expected[key].tobytes(), key


def test_parquet_and_csv_inputs_give_the_same_output(
        clean_run: tuple[Path, Path], minilm_artifact: Path, tmp_path: Path) -> None:
    rows = [(i, t) for i, t in corpus() if isinstance(t, str) and t]
    pq.write_table(pa.table({"id": [i for i, _ in rows], "text": [t for _, t in rows]}),
                   tmp_path / "in.parquet", row_group_size=7)
    (tmp_path / "in.csv").write_text(
        "id,text\n" + "".join(f"{i},{t}\n" for i, t in rows))
    jsonl = write_jsonl(tmp_path / "in.jsonl", rows)
    outputs = []
    for source in (jsonl, tmp_path / "in.parquet", tmp_path / "in.csv"):
        run_local(job(source, tmp_path / source.suffix[1:], minilm_artifact))
        outputs.append(read_output(tmp_path / source.suffix[1:]))
    assert outputs[0].num_rows == 90
    assert outputs[1].equals(outputs[0]) and outputs[2].equals(outputs[0])


def test_the_command_names_a_missing_column_in_one_line(minilm_artifact: Path,
                                                        tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", corpus(3))
    pq.write_table(pa.table({"id": ["a"], "body": ["x"]}), tmp_path / "in.parquet")
    result = subprocess.run(
        [sys.executable, "-m", "runtime.bulk", str(tmp_path / "in.parquet"),
         str(tmp_path / "out"), "--model-path", str(minilm_artifact)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "has no column 'text'; its columns: id, body" in result.stderr
    assert "Traceback" not in result.stderr and source.is_file()


def test_a_chunks_batches_are_its_plan_whatever_runs_at_once(minilm_artifact: Path) -> None:
    """What makes a chunk's float32 bytes the same on every engine: its rows are planned once
    (the batcher's plan_batches and limits) and each batch is run as planned, whether one or
    two one-thread batches run at once."""
    texts = [t for _, t in corpus(200) if isinstance(t, str) and t]
    chunk = Chunk(0, 0, [f"d{i}" for i in range(len(texts))], texts)
    results, shapes = [], []
    for threads in (2, 1):
        core = ChunkEmbedder(minilm_artifact, EmbedSettings(threads=threads), 1024)
        embed = core.embedder.backend.embed

        def recording(feeds: Any, embed: Any = embed) -> Any:
            shapes.append(feeds["input_ids"].shape)
            return embed(feeds)

        core.embedder.backend.embed = recording  # type: ignore[method-assign]
        try:
            cfg = core.embedder.batcher.cfg
            assert (cfg.concurrency, core.embedder.config.threads) == (threads, 1)
            assert cfg.max_batch_tokens == 512  # all-MiniLM's one-thread budget
            results.append(core.embed(chunk))
            lengths = [len(r) for r in core.embedder.tokenizer.encode(chunk.texts, False)]
            plan = plan_batches(lengths, cfg)
        finally:
            core.close()
        assert sorted(shapes) == sorted((len(b), max(lengths[i] for i in b)) for b in plan)
        assert all(rows * width <= 512 for rows, width in shapes if rows > 1)
        shapes.clear()
    assert len(plan) > 4
    assert results[0].table.equals(results[1].table)


def test_the_command_shows_a_progress_bar_and_a_summary(minilm_artifact: Path,
                                                        tmp_path: Path) -> None:
    """As a user runs it: a bar over every input row (rows/s, ETA), then the summary line."""
    rows = corpus(60)
    pq.write_table(pa.table({"id": [i for i, _ in rows],
                             "text": [t if t is None or isinstance(t, str) else str(t)
                                      for _, t in rows]}), tmp_path / "in.parquet")
    result = subprocess.run(
        [sys.executable, "-m", "runtime.bulk", str(tmp_path / "in.parquet"),
         str(tmp_path / "out"), "--model-path", str(minilm_artifact), "--id-column", "id",
         "--chunk-rows", str(CHUNK)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    frames = result.stderr.replace("\r", "\n").splitlines()
    bars = [f for f in frames if f.startswith("in.parquet:")]
    assert bars[0].startswith("in.parquet:   0%|"), bars  # the total known before any row
    assert "| 0.00/63.0 [00:00<?, ?rows/s]" in bars[0], bars
    assert re.search(r"100%\|.*\| 63.0/63.0 \[\d\d:\d\d<00:00, +[\d.]+rows/s\]", bars[-1]), bars
    assert frames[-1].startswith("61 rows embedded, 2 rejected ("), frames[-1]
    assert f"2 rejected ({tmp_path / 'out'}/rejects-*.jsonl); 63 rows in " in frames[-1]
    assert "earlier run" not in frames[-1]  # a first run says nothing of earlier ones
