"""--engine ray on a local two-actor Ray cluster: the same bytes as the one-process engine."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.bulk import ray_engine
from runtime.bulk.local import run_local
from runtime.bulk.ray_engine import RayOptions, run_ray
from tests.integration.runtime.test_bulk import corpus, job, read_output, vectors

pytest.importorskip("ray.data")


def test_ray_writes_the_local_engines_vectors_and_rejects(minilm_artifact: Path,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    rows = corpus(150)
    # Parquet with row groups that do not fall on chunk boundaries: Ray's read blocks are
    # re-cut into chunks; a null and an empty text are rejected by the actors.
    pq.write_table(pa.table({"id": [i for i, _ in rows],
                             "text": [t if isinstance(t, str) or t is None else str(t)
                                      for _, t in rows]}),
                   tmp_path / "in.parquet", row_group_size=23)
    local = run_local(job(tmp_path / "in.parquet", tmp_path / "local", minilm_artifact))
    distributed = job(tmp_path / "in.parquet", tmp_path / "ray", minilm_artifact)
    summary = run_ray(distributed, RayOptions(actors=2, cpus_per_actor=1))
    assert (local.written, local.rejected) == (151, 2)  # the number became the text "7"
    assert (summary.written, summary.rejected, summary.tokens) == (151, 2, local.tokens)
    got, want = read_output(tmp_path / "ray"), read_output(tmp_path / "local")
    assert got.column("id").equals(want.column("id"))
    assert vectors(got).tobytes() == vectors(want).tobytes()  # the same float32 bytes
    assert got.column("tokens").equals(want.column("tokens"))
    rejects = sorted((json.loads(line)["id"], json.loads(line)["reason"])
                     for p in (tmp_path / "ray").glob("rejects-*.jsonl")
                     for line in p.read_text().splitlines())
    assert rejects == [("bad-empty", "empty text"), ("bad-null", "null or missing text")]
    assert not (tmp_path / "ray" / ray_engine.STAGING).exists()
    # A second run over the same input and artifact does nothing (no cluster is started).
    monkeypatch.setattr(ray_engine, "_start", None)
    again = run_ray(distributed, RayOptions(actors=2, cpus_per_actor=1))
    assert (again.rows, again.written) == (0, local.written)
