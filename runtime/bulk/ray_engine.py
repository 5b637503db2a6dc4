"""The same job on a Ray cluster: the driver reads, an actor pool embeds, parts commit.

    driver: the local engine's reader and chunks (runtime/bulk/local.py `pending`): chunk k is
            input rows [k * chunk_rows, (k + 1) * chunk_rows), the ids the same (the row
            number without an id column), committed chunks skipped
      -> EmbedActor.embed(chunk), at most DEPTH chunks queued per actor (memory stays flat;
         an actor never waits for the driver): one ChunkEmbedder per actor (one per GPU,
         else one per node, or per --ray-cpus-per-actor CPUs) forms the chunk's batches as
         the local engine does, so the float32 bytes are the same; it writes part k and its rejects
         (renamed into place) and returns the part's record
      -> the driver appends each record to the part log as it arrives: the commit.

So an interrupted Ray run resumes at the parts it had not committed, in any order they
finished, and a second run does nothing, as with the local engine. Why not Ray Data's
read_* -> map_batches -> write_parquet (the first version): its blocks carry no row number
(no row-number ids, no part index to commit or skip), read_json fails a whole file on one
bad line where the local engine rejects the line, and only the driver needs to reach the
input. Every actor writes into OUT: on a multi-node cluster OUT must be shared storage.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import runtime
from runtime.bulk.chunks import ChunkEmbedder, EmbedSettings
from runtime.bulk.deps import require
from runtime.bulk.local import (BulkJob, Summary, Tally, finished, nothing_left, pending,
                                progress_bar)
from runtime.bulk.sources import Chunk
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
    """One embedder per actor; embeds a chunk and writes its part, uncommitted."""

    def __init__(self, artifact: str, settings: EmbedSettings, chunk_rows: int, out: str):
        self.core = ChunkEmbedder(artifact, settings, chunk_rows)
        self.out = Path(out)

    def embed(self, chunk: Chunk) -> dict[str, Any]:
        result = self.core.embed(chunk)
        return write_part(self.out, chunk.index, (chunk.start, chunk.start + len(chunk.texts)),
                          result.table, result.rejects, result.tokens)


@contextlib.contextmanager
def _local_cluster_env() -> Iterator[None]:
    """The environment a local cluster's processes inherit, set while ray.init starts them:
    workers import this checkout's runtime, whatever is installed (PYTHONPATH inherited, not
    a runtime_env: that would start a worker of its own, 1.8 s later than a prestarted one),
    and Ray's usage statistics, on by default, are not sent (nothing leaves the machine)
    unless the user turned them on."""
    root = str(Path(runtime.__file__).resolve().parent.parent)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
           "RAY_USAGE_STATS_ENABLED": os.environ.get("RAY_USAGE_STATS_ENABLED", "0")}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:  # this process's environment as it was: only the cluster's processes see env
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
    else:
        threads = options.cpus_per_actor or cores
        actors = options.actors or max(1, cores // threads)
        with _local_cluster_env():
            ray.init(num_cpus=actors * threads, include_dashboard=False,
                     logging_level=logging.WARNING)
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
    try:
        chunks = pending(job, parts, bar, tally)
        first = next(chunks, None)
        if first is not None:  # a cluster only when some part is left to do
            _run(job, options, itertools.chain([first], chunks), parts, bar)
    finally:
        bar.close()
    return finished(parts, tally, started)


def _run(job: BulkJob, options: RayOptions, chunks: Iterable[Chunk], parts: PartLog,
         bar: Any) -> None:
    ray, actors, threads, gpus = _start(options)
    settings = replace(job.settings, threads=threads)
    try:  # DEPTH calls at once: the next chunk is tokenised while one is embedded
        actor = ray.remote(EmbedActor).options(num_cpus=threads, num_gpus=gpus,
                                               max_concurrency=DEPTH)
        pool = [actor.remote(str(job.artifact), settings, job.chunk_rows, str(job.out))
                for _ in range(actors)]
        _dispatch(ray, pool, chunks, parts, bar)
    except Exception as exc:  # Ray wraps every failure in its own exception types
        raise BulkError(f"the Ray job failed: {str(exc).strip().splitlines()[-1]}") from exc
    finally:
        if not options.address:
            ray.shutdown()


def _dispatch(ray: Any, pool: list[Any], chunks: Iterable[Chunk], parts: PartLog,
              bar: Any) -> None:
    """Each chunk to the least-loaded actor, at most DEPTH queued on each; every finished
    part is committed as soon as it arrives (so a Ctrl-C keeps all that finished)."""
    running: dict[Any, tuple[int, int]] = {}  # ref -> (actor, rows)
    load = [0] * len(pool)

    def settle(wait_all: bool) -> None:
        while running and (wait_all or len(running) >= DEPTH * len(pool)):
            [ref], _ = ray.wait(list(running), num_returns=1)
            slot, rows = running.pop(ref)
            load[slot] -= 1
            parts.record(ray.get(ref))
            bar.update(rows)

    for chunk in chunks:
        settle(False)
        slot = load.index(min(load))
        running[pool[slot].embed.remote(chunk)] = (slot, len(chunk.texts))
        load[slot] += 1
    settle(True)
