"""python -m runtime.bulk IN OUT --model-path M [--text-column text] [--id-column id]

Embeds every row of IN (JSONL, CSV or Parquet) into OUT/part-*.parquet (id, vector, tokens;
or sparse indices/values, or token vectors, by --embedding-output),
rejects into OUT/rejects-*.jsonl; rerun the same command to resume an interrupted job.
`--engine ray` runs the same chunks on a Ray cluster (a local one unless --ray-address).
--model-path takes an artifact dir, or a checkpoint dir / hub id built on first use into the
artifact cache, as the server does.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from runtime.artifact.cache import Want, build_backend, ensure_model
from runtime.bulk.chunks import EmbedSettings
from runtime.bulk.local import BulkJob, Summary, run_local
from runtime.bulk.sources import Source
from runtime.bulk.state import committed_rows
from runtime import settings
from runtime.settings import add_flag
from runtime.errors import ApplianceError
from runtime.quantization import FLOAT, TYPES

log = logging.getLogger("bulk")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.bulk", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, help="a .jsonl, .csv or .parquet file")
    p.add_argument("output", type=Path, help="the output directory (parts, rejects, state)")
    p.add_argument("--model-path", required=True, help="artifact dir, checkpoint dir or hub id")
    p.add_argument("--text-column", default="text",
                   help="the column (JSON key, CSV header) holding the texts (default: text)")
    p.add_argument("--id-column", default=None, help="carried to the output (default: the "
                   "input row number)")
    p.add_argument("--format", choices=("parquet", "jsonl", "csv"), default=None,
                   help="default: from the input's suffix")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: an actor pool on a Ray cluster")
    p.add_argument("--chunk-rows", type=int, default=1024,
                   help="input rows per output part (and per Ray batch)")
    p.add_argument("--truncate", action="store_true",
                   help="cut over-long texts to the model's maximum (default: reject them)")
    p.add_argument("--prompt-name", default=None, help="one of the model's prompts")
    p.add_argument("--embedding-types", nargs="+", choices=TYPES, default=[FLOAT],
                   help="the vector columns: float (vector, float32), int8, uint8, binary, "
                        "ubinary (vector_<type>: int8/uint8 lists; binary packs 8 dims per "
                        "byte); default: float")
    add_flag(p, settings.CHUNK_LONG_INPUTS)
    add_flag(p, settings.CHUNK_OVERLAP)
    p.add_argument("--embedding-output", choices=("dense", "sparse", "multi_vector"),
                   default=None, help="what to write: the dense `vector`, sparse `indices` and "
                   "`values` (SPLADE, bge-m3), or each row's token `vectors` (bge-m3's "
                   "ColBERT); default: the model's first (dense, or SPLADE's sparse)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--log-level", default="info", help="debug, info, warning or error")
    g = p.add_argument_group("backend and artifact (as the server's flags)")
    add_flag(g, settings.BACKEND)
    g.add_argument("--threads", type=int, default=0,
                   help="batches at once, one ONNX Runtime thread each (0: one per core; "
                        "with Ray: --ray-cpus-per-actor)")
    add_flag(g, settings.MAX_BATCH_SIZE)
    add_flag(g, settings.MAX_BATCH_TOKENS)
    add_flag(g, settings.TRT_CONTEXTS, help="TensorRT batches at once (1: vectors identical "
                                            "byte for byte)")
    add_flag(g, settings.ARTIFACT_CACHE)
    add_flag(g, settings.PRECISION)
    add_flag(g, settings.BUILDER_PYTHON)
    r = p.add_argument_group("Ray (--engine ray)")
    r.add_argument("--ray-address", default=None, help="an existing cluster (default: a "
                   "local one on this machine's cores)")
    r.add_argument("--ray-actors", type=int, default=None,
                   help="embedder actors (default: one per GPU, else per "
                   "--ray-cpus-per-actor CPUs: one per node)")
    r.add_argument("--ray-cpus-per-actor", type=int, default=0,
                   help="CPUs (one-thread batches at once) per actor; 0: a node's cores")
    return p


def job_from(args: argparse.Namespace) -> BulkJob:
    if args.chunk_rows < 1:
        raise ApplianceError(f"--chunk-rows must be at least 1, got {args.chunk_rows}")
    if args.truncate and args.chunk_long_inputs:
        raise ApplianceError("--truncate and --chunk-long-inputs both say what to do with a "
                             "long text: give one")
    source = Source.of(args.input, args.text_column, args.id_column, args.format)
    want = Want(args.model_path, args.precision or settings.DEFAULT_PRECISION,
                build_backend(args.backend))
    artifact = ensure_model(args.artifact_cache, want, args.builder_python)
    embed = EmbedSettings(backend=args.backend, threads=args.threads,
                          max_batch_size=args.max_batch_size,
                          max_batch_tokens=args.max_batch_tokens, truncate=args.truncate,
                          prompt_name=args.prompt_name, trt_contexts=args.trt_contexts,
                          embedding_types=tuple(dict.fromkeys(args.embedding_types)),
                          chunking=args.chunk_long_inputs, chunk_overlap=args.chunk_overlap,
                          output=args.embedding_output)
    return BulkJob(source, args.output, artifact, embed, args.chunk_rows,
                   progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        job = job_from(args)
        summary = run(job, args)
    except ApplianceError as exc:  # one clear line, no traceback, exit status 1
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: what is committed stays, the next run resumes
        parts, rows = committed_rows(args.output)
        print(f"\ninterrupted: {parts:,} parts ({rows:,} input rows) are committed in "
              f"{args.output}; run the same command again to resume", file=sys.stderr)
        return 130
    print(summary.line(job.out), file=sys.stderr)
    return 0


def run(job: BulkJob, args: argparse.Namespace) -> Summary:
    if args.engine == "ray":
        from runtime.bulk.ray_engine import RayOptions, run_ray

        return run_ray(job, RayOptions(args.ray_address, args.ray_actors,
                                       args.ray_cpus_per_actor))
    return run_local(job)


if __name__ == "__main__":
    sys.exit(main())
