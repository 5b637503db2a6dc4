"""The one-process engine: read, embed and commit chunk by chunk, with a progress bar.

Memory is one chunk of input, its token rows and vectors, and the reader's batch: flat in
the corpus size. Committed parts are read past (their rows still stream through the reader,
but nothing is embedded), so an interrupted run resumes at its first uncommitted part, and
the Embedder is only loaded when some part is left to do.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from runtime.bulk.chunks import ChunkEmbedder, EmbedSettings, Running
from runtime.bulk.deps import require
from runtime.bulk.sources import Chunk, Source, estimate_rows, fingerprint, read_batches, rechunk
from runtime.bulk.state import PartLog, artifact_fingerprint
from runtime.quantization import FLOAT

log = logging.getLogger("bulk")


@dataclass(frozen=True)
class BulkJob:
    source: Source
    out: Path
    artifact: Path
    settings: EmbedSettings
    chunk_rows: int = 1024
    progress: bool = True

    def key(self, engine: str) -> dict[str, Any]:
        """What the output depends on: a second run with the same key does nothing."""
        s = self.settings
        return {"engine": engine, "input": fingerprint(self.source.path),
                "format": self.source.format, "text_column": self.source.text_column,
                "id_column": self.source.id_column,
                "artifact": artifact_fingerprint(self.artifact), "backend": s.backend,
                "chunk_rows": self.chunk_rows, "truncate": s.truncate,
                "prompt_name": s.prompt_name, "max_batch_size": s.max_batch_size,
                "max_batch_tokens": s.max_batch_tokens, **self.output_key()}

    def output_key(self) -> dict[str, Any]:
        """The output settings added since the first key: only where they differ from their
        defaults, so a job begun before them resumes."""
        s = self.settings
        key: dict[str, Any] = {}
        if s.embedding_types != (FLOAT,):
            key["embedding_types"] = list(s.embedding_types)
        if s.chunking:
            key.update(chunking=True, chunk_overlap=s.chunk_overlap)
        if s.output:
            key["output"] = s.output
        return key


@dataclass(frozen=True)
class Summary:
    rows: int  # input rows of the job: read this run, or all committed when none was left
    written: int  # rows with a vector, in all parts of the job
    rejected: int
    tokens: int
    done_before: int  # input rows whose parts an earlier run had committed
    seconds: float
    load_seconds: float = 0.0  # of which loading the model in this process

    def line(self, out: Path) -> str:
        new = self.rows - self.done_before
        totals = (f"{self.written:,} rows embedded, {self.rejected:,} rejected "
                  f"({out}/rejects-*.jsonl)")
        output = f"{self.tokens:,} tokens; output {out}/*.parquet"
        if self.done_before and not new:  # a rerun of a finished job: say only that
            return (f"nothing to do: an earlier run did all {self.done_before:,} input rows: "
                    f"{totals}; {output}")
        earlier = (f", {self.done_before:,} rows done by an earlier run" if self.done_before
                   else "")
        rate = f"{new / self.seconds:,.0f} rows/s" if self.seconds > 0 and new else "-"
        return (f"{totals}{earlier}; {new:,} rows in {self.seconds:.1f} s "
                f"({self._load()}{rate}); {output}")

    def _load(self) -> str:
        return f"model load {self.load_seconds:.1f} s, " if self.load_seconds else ""


@dataclass
class Tally:
    rows: int = 0  # input rows read this run
    done_before: int = 0  # of which in parts an earlier run committed
    load_seconds: float = 0.0  # loading the model in this process


def pending(job: BulkJob, parts: PartLog, bar: Any, tally: Tally) -> Iterator[Chunk]:
    """The input's chunks that no run has committed yet, in order (both engines' reading:
    the same chunks, row numbers and ids wherever they are embedded)."""
    for chunk in rechunk(read_batches(job.source, job.chunk_rows), job.chunk_rows):
        count = len(chunk.texts)
        tally.rows += count
        if parts.committed(chunk.index):
            tally.done_before += count
            bar.update(count)
            continue
        yield chunk


def finished(parts: PartLog, tally: Tally, started: float) -> Summary:
    parts.finish()
    totals = parts.totals()
    return Summary(tally.rows, totals["written"], totals["rejected"], totals["tokens"],
                   tally.done_before, time.perf_counter() - started, tally.load_seconds)


def nothing_left(job: BulkJob, parts: PartLog) -> Summary:
    totals = parts.totals()
    rows = parts.input_rows()
    log.info("%s already holds this job's output: nothing to do", job.out)
    return Summary(rows, totals["written"], totals["rejected"], totals["tokens"], rows, 0.0)


def run_local(job: BulkJob) -> Summary:
    started = time.perf_counter()
    parts = PartLog(job.out, job.key("local"))
    if parts.complete:
        return nothing_left(job, parts)
    bar, tally = progress_bar(job), Tally()
    core: ChunkEmbedder | None = None
    previous: Running | None = None
    try:  # chunk k + 1 is read, tokenised and queued before chunk k is written
        for chunk in pending(job, parts, bar, tally):
            core = core or _load(job, tally)
            running = core.submit(chunk)
            if previous is not None:
                _commit(parts, previous, bar)
            previous = running
        if previous is not None:
            _commit(parts, previous, bar)
    finally:
        bar.close()
        if core is not None:
            core.close()
    return finished(parts, tally, started)


def _load(job: BulkJob, tally: Tally) -> ChunkEmbedder:
    start = time.perf_counter()
    core = ChunkEmbedder(job.artifact, job.settings, job.chunk_rows)
    tally.load_seconds = time.perf_counter() - start
    return core


def _commit(parts: PartLog, running: Running, bar: Any) -> None:
    chunk, result = running.chunk, running.result()
    parts.commit(chunk.index, (chunk.start, chunk.start + len(chunk.texts)), result.table,
                 result.rejects, result.tokens)
    bar.update(len(chunk.texts))


def progress_bar(job: BulkJob) -> Any:
    """rows/s and the ETA; the total is exact for Parquet, counted lines for text formats."""
    tqdm = require("tqdm").tqdm
    return tqdm(total=estimate_rows(job.source), unit="rows", unit_scale=True, smoothing=0.1,
                desc=job.source.path.name, disable=not job.progress, file=sys.stderr,
                dynamic_ncols=True)
