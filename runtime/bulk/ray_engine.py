"""The same job on Ray Data: read -> chunks -> an actor pool of embedders -> Parquet.

    read_parquet / read_json / read_csv
      -> repartition(target_num_rows_per_block=chunk_rows, strict=True), order preserved:
         block k is input rows [k * chunk_rows, (k + 1) * chunk_rows), the local engine's
         chunk k, so each actor forms the same batches and writes the same float32 bytes
      -> map_batches(EmbedActor, batch_size=chunk_rows): one ChunkEmbedder per actor (one
         per GPU, else one per --ray-cpus-per-actor cores); rejects written by the actor
      -> write_parquet

The output is staged in OUT/.ray-staging and moved into OUT when the whole dataset is
written; the state file then marks the job complete, so a second run does nothing. An
interrupted Ray job starts over (Ray retries failed tasks itself; parts are not resumable
here as they are with the local engine). The local cluster gets one logical CPU more than
the actors take: Ray's read and write tasks need one, and would otherwise wait forever for
actors that never return theirs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import runtime
from runtime.bulk.chunks import ChunkEmbedder, EmbedSettings
from runtime.bulk.deps import require
from runtime.bulk.local import BulkJob, Summary
from runtime.bulk.sources import Chunk, InputError, Source
from runtime.bulk.state import PartLog
from runtime.errors import ApplianceError

log = logging.getLogger("bulk")
STAGING = ".ray-staging"


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: a local cluster on this machine
    actors: int | None = None  # None: one per GPU, else per cpus_per_actor cores
    cpus_per_actor: int = 1


class BulkError(ApplianceError):
    """The Ray job failed (a read error, an actor that could not load the model)."""


class EmbedActor:
    """One embedder per actor, fed one chunk (a block of chunk_rows rows) per call."""

    def __init__(self, artifact: str, settings: EmbedSettings, chunk_rows: int,
                 source: Source, staging: str):
        self.core = ChunkEmbedder(artifact, settings, chunk_rows)
        self.source, self.staging = source, Path(staging)

    def __call__(self, batch: Any) -> Any:
        ids = batch.column(self.source.id_column).to_pylist()
        result = self.core.embed(Chunk(-1, -1, ids, batch.column(self.source.text_column)
                                       .to_pylist()))
        if result.rejects:
            path = self.staging / f"rejects-{uuid.uuid4().hex}.jsonl"
            path.write_text("".join(json.dumps(r, default=str) + "\n" for r in result.rejects))
        return result.table


def _read(source: Source) -> Any:
    data = require("ray.data")
    path = str(source.path)
    if source.format == "parquet":
        return data.read_parquet(path).select_columns(source.columns)
    if source.format == "jsonl":
        return data.read_json(path, lines=True).select_columns(source.columns)
    pa, csv = require("pyarrow"), require("pyarrow.csv")
    options = csv.ConvertOptions(include_columns=source.columns,
                                 column_types={source.text_column: pa.string()})
    return data.read_csv(path, convert_options=options)


def _start(options: RayOptions, threads: int) -> tuple[Any, int, int]:
    """ray.init; the actor count and GPUs per actor."""
    ray = require("ray")
    if options.address:
        ray.init(address=options.address, logging_level=logging.WARNING)
    else:  # the workers import this checkout's runtime, whatever is installed
        root = str(Path(runtime.__file__).resolve().parent.parent)
        cores = len(os.sched_getaffinity(0))
        actors = options.actors or max(1, cores // threads)
        ray.init(num_cpus=actors * threads + 1, include_dashboard=False,
                 logging_level=logging.WARNING,
                 runtime_env={"env_vars": {"PYTHONPATH": root}})
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return ray, options.actors or gpus, 1
    return ray, options.actors or max(1, int(resources.get("CPU", 2) - 1) // threads), 0


def run_ray(job: BulkJob, options: RayOptions) -> Summary:
    if not job.source.id_column:
        raise InputError("--engine ray needs --id-column: Ray's blocks carry no row number")
    started = time.perf_counter()
    parts = PartLog(job.out, job.key("ray"))
    if parts.complete:
        log.info("%s already holds this job's output: nothing to do", job.out)
        return _summary(job.out, 0, 0.0)
    staging = job.out / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # an interrupted run's leftovers
    staging.mkdir(parents=True)
    threads = options.cpus_per_actor
    settings = replace(job.settings, threads=threads)
    ray, actors, gpus = _start(options, threads)
    try:
        _execute(job, settings, staging, actors, gpus)
    except Exception as exc:  # Ray wraps every failure in its own exception types
        raise BulkError(f"the Ray job failed: {str(exc).strip().splitlines()[-1]}") from exc
    finally:
        if not options.address:
            ray.shutdown()
    rows = 0
    for path in sorted(staging.iterdir()):
        rows += _rows(path)
        os.replace(path, job.out / path.name)
    staging.rmdir()
    parts.finish()
    return _summary(job.out, rows, time.perf_counter() - started)


def _execute(job: BulkJob, settings: EmbedSettings, staging: Path, actors: int,
             gpus: int) -> None:
    data = require("ray.data")
    data.DataContext.get_current().execution_options.preserve_order = True
    dataset = _read(job.source).repartition(target_num_rows_per_block=job.chunk_rows,
                                            strict=True)
    dataset.map_batches(
        EmbedActor, batch_size=job.chunk_rows, batch_format="pyarrow", concurrency=actors,
        num_cpus=settings.threads, num_gpus=gpus,
        fn_constructor_args=(str(job.artifact), settings, job.chunk_rows, job.source,
                             str(staging)),
    ).write_parquet(str(staging))


def _rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return int(require("pyarrow.parquet").ParquetFile(path).metadata.num_rows)
    return len(path.read_text().splitlines())


def _summary(out: Path, rows: int, seconds: float) -> Summary:
    """Counted from the files: Ray's output is not committed part by part."""
    parquet = require("pyarrow.parquet")
    written = tokens = 0
    for path in out.glob("*.parquet"):
        tokens_column = parquet.read_table(path, columns=["tokens"]).column("tokens")
        written += len(tokens_column)
        tokens += int(require("pyarrow.compute").sum(tokens_column).as_py() or 0)
    rejected = sum(len(p.read_text().splitlines()) for p in out.glob("rejects-*.jsonl"))
    return Summary(rows, written, rejected, tokens, 0, seconds)
