"""SGLang-compatible entry point:

    python -m server.launch_server --model-path M --is-embedding --host 0.0.0.0 --port 30000

`--model-path` takes a built artifact dir, a checkpoint dir or a hub id; the last two are
built on first use into the artifact cache by a separate builder process, so this serving
process never loads torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

from runtime.artifact import cache as artifact_cache
from runtime.artifact import Artifact
from runtime.artifact.cache import Want, build_backend
from runtime.config import RuntimeConfig
from runtime.errors import ApplianceError, ArtifactError
from runtime.pipeline.limits import BatchFlags
from runtime.artifact.manifest import is_artifact
from runtime.adapters.media import MediaConfig
from runtime.served_model import parse_overrides, served_spec
from server import flags, memory_fit, models_file
from server.config import ServerConfig
from server.lifecycle import configure_logging, one_line
from server.models import check_names

if TYPE_CHECKING:
    from runtime.pipeline.embedder import Embedder

log = logging.getLogger("server")
T = TypeVar("T")


def parser() -> argparse.ArgumentParser:
    return flags.parser(__doc__ or "")


# SGLang's --dtype as a first-use build precision; auto: the default.
DTYPE_PRECISION = {"half": "fp16", "float16": "fp16", "bfloat16": "bf16", "float": "fp32",
                   "float32": "fp32"}


def precision(args: argparse.Namespace) -> str:
    """--precision, else SGLang's --dtype, else fp32."""
    return args.precision or DTYPE_PRECISION.get(args.dtype or "auto", "fp32")


def wanted(args: argparse.Namespace) -> Want:
    """What a first-use build of --model-path makes, from the flags."""
    backend = build_backend(args.backend)
    targets = tuple(args.compute_capability) if backend == "tensorrt-rtx" else ()
    return Want(args.model_path, precision(args), backend, targets)


def ensure_artifact(args: argparse.Namespace) -> Path:
    """--model-path as is when it is an artifact; else its cache entry, reused or built."""
    if is_artifact(args.model_path):
        return Path(args.model_path)
    limits = [arg for flag, value in (("--max-batch-size", args.max_batch_size),
                                      ("--max-batch-tokens", args.max_batch_tokens))
              if value is not None for arg in (flag, str(value))]
    return artifact_cache.ensure_model(args.artifact_cache, wanted(args), args.builder_python,
                                       limits, force=args.force_build)


def check_chat_template(requested: str | None, artifact: Artifact | Path) -> None:
    """A model with its own template (GME: gme-qwen2-vl) refuses a different one."""
    opened = artifact if isinstance(artifact, Artifact) else Artifact.open(artifact)
    own = opened.spec.chat_template
    if requested and own and requested != own:
        raise ArtifactError(f"--chat-template {requested} does not fit this model; "
                            f"it is served with its own template {own!r}")


def build_config(args: argparse.Namespace, artifact: Artifact) -> ServerConfig:
    flags = BatchFlags(max_batch_size=args.max_batch_size,
                       max_batch_tokens=args.max_batch_tokens,
                       concurrency=args.batches_in_flight, max_wait_ms=args.max_wait_ms,
                       max_queue_rows=args.max_queue, max_queue_wait_ms=args.max_queue_wait_ms,
                       call_cost_tokens=args.call_cost_tokens)
    media = MediaConfig(allowed_domains=tuple(args.allowed_media_domains),
                        allowed_local_path=args.allowed_local_media_path,
                        timeout_s=args.media_timeout, max_bytes=args.max_image_bytes,
                        max_pixels=args.max_image_pixels)
    runtime = RuntimeConfig(backend=args.backend, batch=flags,
                            threads=args.threads,
                            allow_auto_truncate=args.allow_auto_truncate,
                            trt_contexts=args.trt_contexts, media=media,
                            max_request_tokens=args.max_tokens_per_request,
                            chunk_long_inputs=args.chunk_long_inputs,
                            chunk_overlap=args.chunk_overlap)
    return ServerConfig(artifact=artifact, model_path=args.model_path,
                        served_model_name=args.served_model_name or args.model_path,
                        host=args.host, port=args.port, runtime=runtime,
                        max_inputs_per_request=args.max_inputs_per_request,
                        max_rerank_documents=args.max_rerank_documents,
                        rerank_truncate=args.rerank_overflow == "truncate",
                        max_request_bytes=args.max_request_bytes,
                        api_key=args.api_key or None, drain_timeout_s=args.drain_timeout,
                        drain_delay_s=args.drain_delay,
                        aliases=tuple(getattr(args, "aliases", None) or ()))


def serve_as(args: argparse.Namespace, artifact: Artifact) -> Artifact:
    """The artifact under the spec that --context-length and --json-model-override-args
    make of its own (runtime/served_model.py)."""
    spec, ignored = served_spec(artifact.spec, parse_overrides(args.json_model_override_args),
                                args.context_length, args.gme_image_range)
    if ignored:
        log.info("--json-model-override-args: %s have no effect here (the model is a built "
                 "graph; only is_matryoshka and matryoshka_dimensions act)", ", ".join(ignored))
    return artifact.with_spec(spec)


def prepare(args: argparse.Namespace) -> ServerConfig | None:
    """Everything before the models load: first-use builds, then each artifact opened once
    (its manifest read here, and handed on in the config). None: --build-only is done.
    Several models (server/models_file.py): the first's config holds the others'."""
    models = models_file.launches(args, parser())
    paths = [_each(m, len(models), ensure_artifact) for m in models]
    if args.build_only:
        log.info("build only: %s is ready", ", ".join(map(str, paths)))
        return None
    configs = [_each(m, len(models), partial(_configure, path=path))
               for m, path in zip(models, paths)]
    check_names(configs)
    configs = share_cores(configs, len(os.sched_getaffinity(0)))
    memory_fit.check(configs, args.memory_budget_gib)  # refuses, in one line, what won't fit
    for config in configs:
        log.info("serving %s as %r on %s:%d", config.artifact.path, config.served_model_name,
                 args.host, args.port)
    first, *more = configs
    return replace(first, more_models=tuple(more))


def _configure(args: argparse.Namespace, *, path: Path) -> ServerConfig:
    artifact = serve_as(args, Artifact.open(path))
    check_chat_template(args.chat_template, artifact)
    return build_config(args, artifact)


def _each(model: argparse.Namespace, count: int, step: Callable[[argparse.Namespace], T]) -> T:
    """One model's startup step; with several models, a failure names the model."""
    try:
        return step(model)
    except ApplianceError as exc:
        if count == 1:
            raise
        raise models_file.named(model, exc) from exc


def share_cores(configs: list[ServerConfig], cores: int) -> list[ServerConfig]:
    """Several models on one CPU: ONNX Runtime's adaptive threading (--threads 0) plans its
    batches in flight for the cores it is given, so each model gets an equal share rather
    than each taking every core (then a flood on one would hold twice the threads of the
    other's requests). Explicit --threads, and GPU backends, are left as given."""
    if len(configs) == 1:
        return configs
    share = max(1, cores // len(configs))
    return [replace(c, runtime=replace(c.runtime, cores=share)) if not c.runtime.threads
            else c for c in configs]


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    config = configure(args)
    if config is None:
        return
    from server.lifecycle import load_or_exit
    from server.workers import resolve_workers, run_workers

    workers = resolve_workers(args.workers, config)
    if workers > 1:
        run_workers(args, config, workers, serve)  # each worker loads the model itself
        return
    serve(args, config, load_or_exit(config))  # a broken artifact exits here, at once


def configure(args: argparse.Namespace) -> ServerConfig | None:
    """Logging, then prepare(): the config, or None when --build-only is done; a startup
    failure exits 1 after one clear line, no traceback."""
    configure_logging(args.log_level)
    if flags.inert_given(args):
        log.info("SGLang flags with no effect in this server: %s",
                 " ".join(flags.inert_given(args)))
    try:
        return prepare(args)
    except ApplianceError as exc:  # one clear line, no traceback, exit status 1
        log.error("startup failed: %s", one_line(exc))
        raise SystemExit(1) from exc


def serve(args: argparse.Namespace, config: ServerConfig,
          embedder: "Embedder | Sequence[Embedder]",
          sockets: list[socket.socket] | None = None) -> None:
    """uvicorn around the app until SIGTERM/SIGINT, on its own listener or on `sockets`
    (server/workers.py); bench/standin.py serves a stand-in engine through this same path."""
    import uvicorn

    from server.app import create_app
    from server.lifecycle import draining_server

    app = create_app(config, embedder)
    # SIGTERM: /ready turns 503 (for --drain-delay seconds requests are still served), then
    # uvicorn stops accepting and lets in-flight requests finish (up to the drain timeout);
    # then the lifespan closes the embedder; exit status 0.
    server = draining_server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level=args.log_level.lower(),
        timeout_graceful_shutdown=config.drain_timeout_s), app.state.readiness,
        config.drain_delay_s)
    failed: list[bool] = []

    def on_fatal() -> None:  # a failed warm-up ends the process with status 1
        failed.append(True)
        server.should_exit = True

    app.state.on_fatal = on_fatal
    # uvicorn re-raises the SIGTERM it drained for to the handler it found; the default one
    # would kill us (status -15), so the one it finds says the drain is done: exit 0.
    signal.signal(signal.SIGTERM, lambda *_: log.info("drained after SIGTERM; exiting"))
    server.run(sockets=sockets)
    if failed or not server.started:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
