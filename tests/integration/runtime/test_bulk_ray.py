"""--engine ray on a local two-actor Ray cluster: the same bytes as the one-process engine,
resumed by part after an interruption, with row-number ids when there is no id column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.bulk import ray_engine
from runtime.bulk.chunks import EmbedSettings
from runtime.bulk.local import BulkJob, run_local
from runtime.bulk.ray_engine import RayOptions, run_ray
from runtime.bulk.sources import Source
from runtime.bulk.state import PARTS, PartLog
from tests.integration.runtime.test_bulk import CHUNK, corpus, job, write_jsonl

pytest.importorskip("ray")
TWO = RayOptions(actors=2, cpus_per_actor=1)


def files(out: Path) -> dict[str, bytes]:
    """Every part and rejects file, by name: the engines must write the same bytes."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.name.startswith(("part-", "rejects-"))}


def logged_parts(out: Path) -> list[int]:
    return [json.loads(line)["part"] for line in (out / PARTS).read_text().splitlines()]


def test_an_interrupted_ray_run_resumes_to_the_local_engines_bytes(
        minilm_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = corpus(150)
    # Parquet row groups that do not fall on chunk boundaries; a null and an empty text
    # are rejected by the actors, with their row numbers.
    pq.write_table(pa.table({"id": [i for i, _ in rows],
                             "text": [t if isinstance(t, str) or t is None else str(t)
                                      for _, t in rows]}),
                   tmp_path / "in.parquet", row_group_size=23)
    local = run_local(job(tmp_path / "in.parquet", tmp_path / "local", minilm_artifact))
    assert (local.written, local.rejected) == (151, 2)  # the number became the text "7"
    record, calls = PartLog.record, []

    def interrupted(self: PartLog, part: dict[str, Any]) -> None:
        calls.append(part["part"])
        if len(calls) == 4:
            raise KeyboardInterrupt  # the user's Ctrl-C after three parts committed
        record(self, part)

    monkeypatch.setattr(PartLog, "record", interrupted)
    distributed = job(tmp_path / "in.parquet", tmp_path / "ray", minilm_artifact)
    with pytest.raises(KeyboardInterrupt):
        run_ray(distributed, TWO)
    committed = logged_parts(tmp_path / "ray")
    assert len(committed) == 3
    monkeypatch.setattr(PartLog, "record", record)
    summary = run_ray(distributed, TWO)
    done = sum(min(CHUNK, 153 - CHUNK * k) for k in committed)
    assert (summary.rows, summary.done_before) == (153, done)
    assert (summary.written, summary.rejected, summary.tokens) == (151, 2, local.tokens)
    # Each part embedded and committed once: the resumed run skipped the three committed.
    assert sorted(logged_parts(tmp_path / "ray")) == list(range(10))
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    # A second run over the same input and artifact does nothing (no cluster is started).
    monkeypatch.setattr(ray_engine, "_start", None)
    again = run_ray(distributed, TWO)
    # (the summary counts the job's rows, all done by the earlier run: 'nothing to do')
    assert (again.rows, again.done_before, again.written) == (153, 153, local.written)


def test_without_an_id_column_ray_gives_the_row_numbers(minilm_artifact: Path,
                                                        tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", corpus(60))
    with source.open("a") as fh:
        fh.write("not json\n")  # a bad line is one rejected row, as in the local engine
    jobs = [BulkJob(Source.of(source, "text", None), tmp_path / name, minilm_artifact,
                    EmbedSettings(threads=1), CHUNK, progress=False) for name in ("l", "r")]
    # The default layout: one actor running a one-thread batch per core (the local run: one
    # at a time); a chunk's batches are its plan either way, so the bytes are the same.
    local, ray = run_local(jobs[0]), run_ray(jobs[1], RayOptions())
    assert (local.written, local.rejected) == (ray.written, ray.rejected) == (60, 4)
    ids = pq.read_table(tmp_path / "r" / "part-000000.parquet").column("id").to_pylist()
    assert ids == list(range(CHUNK))
    assert files(tmp_path / "r") == files(tmp_path / "l")
