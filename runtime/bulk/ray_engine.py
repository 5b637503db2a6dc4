"""The same job on Ray Data: read -> map_batches over an actor pool -> parts committed.

    read:         a Datasource with ONE read task that reads the input in order with the
                  local engine's reader: chunk k is input rows [k * chunk_rows, (k + 1) *
                  chunk_rows), ids the same (the row number without an id column), committed
                  chunks skipped; one block per chunk, streamed (Ray Data's backpressure keeps
                  memory flat)
    map_batches:  EmbedActor, an actor pool (one per GPU, else one per node, or per
                  --ray-cpus-per-actor CPUs), DEPTH chunks at once per actor. Each forms the
                  chunk's batches as the local engine does, so the float32 bytes are the same,
                  writes part k and its rejects (renamed into place) and returns the record
    driver:       iterates the records as they stream out and appends each to the part log:
                  the commit.

So an interrupted run resumes at the parts it had not committed, in any order they finished,
and a second run does nothing, as with the local engine. Why not Ray Data's own read_parquet /
read_json / read_csv and write_parquet (the first version): its readers split files across
tasks and their blocks carry no row number (no row-number ids, no part index to commit or
skip), read_json fails a whole file on one bad line where the local engine rejects the line,
and write_parquet names its files itself, so no part can be committed or skipped. Reading is
one task, so on a multi-node cluster IN must be readable where that task runs and OUT must
be shared storage (every actor writes into it).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import runtime
from runtime.bulk.chunks import ChunkEmbedder, EmbedSettings
from runtime.bulk.deps import require
from runtime.bulk.local import BulkJob, Summary, Tally, finished, nothing_left, progress_bar
from runtime.bulk.sources import Chunk, read_batches, rechunk
from runtime.bulk.state import PartLog, write_part
from runtime.errors import ApplianceError

log = logging.getLogger("bulk")
DEPTH = 2  # chunks per actor at once: one embedding, the next tokenised and queued behind it


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: a local cluster on this machine
    actors: int | None = None  # None: one per GPU, else one per cpus_per_actor CPUs
    cpus_per_actor: int = 0  # 0: a node's cores (the smallest node's, on a cluster)


class BulkError(ApplianceError):
    """The Ray job failed (an actor that could not load the model, or died)."""


class EmbedActor:
    """map_batches' callable class: one embedder per actor. Each batch is one chunk (a row
    holding it pickled); it writes the chunk's part, uncommitted, and returns its record."""

    def __init__(self, artifact: str, settings: EmbedSettings, chunk_rows: int, out: str):
        self.core = ChunkEmbedder(artifact, settings, chunk_rows)
        self.out = Path(out)

    def __call__(self, batch: Any) -> dict[str, list[str]]:
        return {"record": [json.dumps(self.embed(pickle.loads(blob)))
                           for blob in batch["chunk"]]}

    def embed(self, chunk: Chunk) -> dict[str, Any]:
        result = self.core.embed(chunk)
        return write_part(self.out, chunk.index, (chunk.start, chunk.start + len(chunk.texts)),
                          result.table, result.rejects, result.tokens)


def read_chunks(job: BulkJob, committed: frozenset[int]) -> Iterator[Any]:
    """The read task's blocks: the chunks no run has committed, in order, one per block."""
    pa = require("pyarrow")
    for chunk in rechunk(read_batches(job.source, job.chunk_rows), job.chunk_rows):
        if chunk.index not in committed:
            yield pa.table({"chunk": [pickle.dumps(chunk)]})


def chunk_source(ray: Any, job: BulkJob, committed: frozenset[int]) -> Any:
    """A Ray Data Datasource reading `job`'s input in one task (rows numbered as read)."""
    from ray.data.block import BlockMetadata

    class ChunkSource(ray.data.Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None,
                                 input_files=(str(job.source.path),))
            return [ray.data.ReadTask(lambda: read_chunks(job, committed), meta)]

    return ChunkSource()


def _start(options: RayOptions) -> tuple[Any, int, int, int]:
    """ray.init; the actor count, threads (CPUs) and GPUs per actor. On CPU one actor per
    node runs a one-thread batch per core, as the local engine does: as fast as one
    one-thread actor per core on 2 cores (27.6-30.1 s vs 28.2-28.7 s on a 3x corpus), with
    one copy of the model per node instead of one per core, and no actor left idle while
    another finishes the last chunk."""
    ray = require("ray")
    cores = len(os.sched_getaffinity(0))
    if options.address:
        ray.init(address=options.address, logging_level=logging.WARNING)
        cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]]
        threads = options.cpus_per_actor or min((c for c in cpus if c), default=1)
    else:  # the workers import this checkout's runtime, whatever is installed
        threads = options.cpus_per_actor or cores
        root = str(Path(runtime.__file__).resolve().parent.parent)
        actors = options.actors or max(1, cores // threads)
        ray.init(num_cpus=actors * threads, include_dashboard=False,
                 logging_level=logging.WARNING,
                 runtime_env={"env_vars": {"PYTHONPATH": root}})
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return ray, options.actors or gpus, threads, 1
    return ray, options.actors or max(1, int(resources.get("CPU", 1)) // threads), threads, 0


def run_ray(job: BulkJob, options: RayOptions) -> Summary:
    started = time.perf_counter()
    parts = PartLog(job.out, job.key("ray"))
    if parts.complete:
        return nothing_left(job, parts)
    bar, tally = progress_bar(job), Tally()
    # Rows an earlier run committed: the read task skips them without telling the driver.
    tally.done_before = sum(p["rows"][1] - p["rows"][0] for p in parts.parts.values())
    tally.rows = tally.done_before
    bar.update(tally.done_before)
    try:
        _run(job, options, parts, bar, tally)
    finally:
        bar.close()
    return finished(parts, tally, started)


def _run(job: BulkJob, options: RayOptions, parts: PartLog, bar: Any, tally: Tally) -> None:
    ray, actors, threads, gpus = _start(options)
    settings = replace(job.settings, threads=threads)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the command's own bar counts committed rows
    context.print_on_execution_start = False
    try:
        source = chunk_source(ray, job, frozenset(parts.parts))
        # The read task reserves no CPU: the actors hold them all, and a reader waiting for
        # one would never run (the local engine's reader shares its cores the same way).
        records = ray.data.read_datasource(source, override_num_blocks=1, num_cpus=0).map_batches(
            EmbedActor, batch_size=1, batch_format="numpy", num_cpus=threads, num_gpus=gpus,
            # DEPTH chunks in each actor at once, on threads: the next one is tokenised and
            # queued while one embeds (Ray Data's default runs one call at a time).
            compute=ray.data.ActorPoolStrategy(
                size=actors, max_tasks_in_flight_per_actor=DEPTH,
                max_concurrent_calls_per_actor=DEPTH, enable_true_multi_threading=True),
            fn_constructor_args=(str(job.artifact), settings, job.chunk_rows, str(job.out)))
        for row in records.iter_rows():  # streamed: each part commits as soon as it is done
            record = json.loads(row["record"])
            parts.record(record)
            rows = record["rows"][1] - record["rows"][0]
            tally.rows += rows
            bar.update(rows)
    except Exception as exc:  # Ray wraps every failure in its own exception types
        raise BulkError(f"the Ray job failed: {str(exc).strip().splitlines()[-1]}") from exc
    finally:
        if not options.address:
            ray.shutdown()
