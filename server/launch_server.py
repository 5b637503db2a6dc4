"""SGLang-compatible entry point:

    python -m server.launch_server --model-path M --is-embedding --host 0.0.0.0 --port 30000

`--model-path` takes a built artifact dir, a checkpoint dir or a hub id; the last two are
built on first use into the artifact cache by a separate builder process, so this serving
process never loads torch.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from runtime.batcher import BatchConfig
from runtime.config import BACKENDS, RuntimeConfig
from runtime.errors import ApplianceError, ArtifactError
from runtime.manifest import Manifest, is_artifact
from runtime.media import MediaConfig
from runtime.backends.choose import require_tensorrt, tensorrt_missing
from server.config import ServerConfig
from server.lifecycle import one_line

log = logging.getLogger("server")
DEFAULT_CACHE = Path(os.environ.get("TRT_EMBED_CACHE", Path.home() / ".cache" / "trt-embed"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m server.launch_server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sg = p.add_argument_group("SGLang-compatible flags")
    sg.add_argument("--model-path", required=True, help="artifact dir, checkpoint dir or hub id")
    sg.add_argument("--is-embedding", action="store_true", help="accepted; always embedding")
    sg.add_argument("--host", default="127.0.0.1")
    sg.add_argument("--port", type=int, default=30000)
    sg.add_argument("--chat-template", default=None, help="e.g. gme-qwen2-vl")
    sg.add_argument("--trust-remote-code", action="store_true", help="accepted; families are built in")
    sg.add_argument("--served-model-name", default=None)
    sg.add_argument("--allow-auto-truncate", action="store_true",
                    help="truncate over-long inputs instead of answering 400")
    sg.add_argument("--log-level", default="info")
    ap = p.add_argument_group("appliance flags")
    ap.add_argument("--backend", default="auto", choices=BACKENDS)
    ap.add_argument("--artifact-cache", type=Path, default=DEFAULT_CACHE,
                    help="where checkpoints are built on first use (env TRT_EMBED_CACHE)")
    ap.add_argument("--max-batch-tokens", type=int, default=None,
                    help="padded tokens (rows x longest row) per backend call; default "
                    "16384, or on CPU (one-thread ONNX Runtime batches) 196608 / model width")
    ap.add_argument("--max-batch-size", type=int, default=64)
    ap.add_argument("--max-wait-ms", type=float, default=1.0,
                    help="how long an idle batcher waits for company")
    ap.add_argument("--max-queue", type=int, default=8192, help="queued inputs before 429")
    ap.add_argument("--max-inputs-per-request", type=int, default=2048)
    _reliability_flags(p.add_argument_group("limits, auth and shutdown"))
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads; 0: all cores")
    ap.add_argument("--batches-in-flight", type=int, default=1,
                    help="batches the backend runs at once with an explicit --threads "
                         "(adaptive ONNX Runtime runs two per core; a larger value raises "
                         "that); TensorRT uses one per execution context")
    ap.add_argument("--trt-contexts", type=int, default=2,
                    help="TensorRT execution contexts, one CUDA stream each (batches in flight)")
    md = p.add_argument_group("image inputs (multimodal models)")
    md.add_argument("--allowed-media-domains", nargs="*", default=[],
                    help="hosts whose image URLs may resolve to loopback/private addresses")
    md.add_argument("--allowed-local-media-path", type=Path, default=None,
                    help="serve local image paths under this directory (refused otherwise)")
    md.add_argument("--media-timeout", type=float, default=10.0, help="seconds per image fetch")
    md.add_argument("--max-image-bytes", type=int, default=20 * 1024 * 1024)
    md.add_argument("--max-image-pixels", type=int, default=32_000_000,
                    help="width x height above which an image is refused before decoding")
    return p


def _reliability_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--max-request-bytes", type=int, default=16 * 1024 * 1024,
                   help="request body cap; larger bodies get 413 without being read")
    g.add_argument("--max-tokens-per-request", type=int, default=300_000,
                   help="tokens summed over a request's inputs; more: 400")
    g.add_argument("--max-queue-wait-ms", type=float, default=0.0,
                   help="503 for a request none of whose inputs reached the model in this "
                        "time (0: no limit)")
    g.add_argument("--api-key", default=os.environ.get("TRT_EMBED_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on every route but /health "
                        "(env TRT_EMBED_API_KEY)")
    g.add_argument("--drain-timeout", type=int, default=30,
                   help="seconds in-flight requests get to finish after SIGTERM")


def artifact_dir(model_path: str, cache: Path) -> Path:
    """Where a checkpoint or hub id is built: named for it, keyed by its absolute location."""
    key = os.path.abspath(model_path) if os.path.isdir(model_path) else model_path
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(model_path.rstrip("/"))
    # A package's bundled checkpoint sits in .../<package>/model: name it for the package.
    name = (path.parent.name if path.name == "model" else path.name) or "model"
    return cache / "artifacts" / f"{name}-{digest}"


def build_backend(backend: str) -> str:
    """What a first-use build compiles for: a TensorRT plan when it will be served by one.
    `--backend tensorrt` without TensorRT or a GPU fails here, before any build starts."""
    if backend == "tensorrt":
        require_tensorrt()
        return "tensorrt"
    return "tensorrt" if backend == "auto" and not tensorrt_missing() else "onnxruntime"


def ensure_artifact(model_path: str, cache: Path, backend: str = "onnxruntime") -> Path:
    if is_artifact(model_path):
        return Path(model_path)
    target = artifact_dir(model_path, cache)
    log.info("building %s into %s (a separate builder process)", model_path, target)
    cmd = [sys.executable, "-m", "builder", "--model-path", model_path, "--output", str(target),
           "--backend", backend]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise ArtifactError(f"building {model_path} failed; see the builder's output above")
    return target


def check_chat_template(requested: str | None, artifact: Path) -> None:
    """A model with its own template (GME: gme-qwen2-vl) refuses a different one."""
    own = Manifest.load(artifact).spec.chat_template
    if requested and own and requested != own:
        raise ArtifactError(f"--chat-template {requested} does not fit this model; "
                            f"it is served with its own template {own!r}")


def build_config(args: argparse.Namespace, artifact: Path) -> ServerConfig:
    batch = BatchConfig(max_batch_tokens=args.max_batch_tokens,
                        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                        max_queue_rows=args.max_queue, max_queue_wait_ms=args.max_queue_wait_ms,
                        concurrency=args.batches_in_flight)
    media = MediaConfig(allowed_domains=tuple(args.allowed_media_domains),
                        allowed_local_path=args.allowed_local_media_path,
                        timeout_s=args.media_timeout, max_bytes=args.max_image_bytes,
                        max_pixels=args.max_image_pixels)
    runtime = RuntimeConfig(backend=args.backend, batch=batch, threads=args.threads,
                            allow_auto_truncate=args.allow_auto_truncate,
                            trt_contexts=args.trt_contexts, media=media,
                            max_request_tokens=args.max_tokens_per_request)
    return ServerConfig(artifact=artifact, model_path=args.model_path,
                        served_model_name=args.served_model_name or args.model_path,
                        host=args.host, port=args.port, runtime=runtime,
                        chat_template=args.chat_template,
                        max_inputs_per_request=args.max_inputs_per_request,
                        max_request_bytes=args.max_request_bytes,
                        api_key=args.api_key or None, drain_timeout_s=args.drain_timeout)


def prepare(args: argparse.Namespace) -> ServerConfig:
    """Everything before the model loads: backend check, first-use build, template check."""
    backend = build_backend(args.backend)
    artifact = ensure_artifact(args.model_path, args.artifact_cache, backend)
    check_chat_template(args.chat_template, artifact)
    return build_config(args, artifact)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = prepare(args)
    except ApplianceError as exc:  # one clear line, no traceback, exit status 1
        log.error("startup failed: %s", one_line(exc))
        raise SystemExit(1) from exc
    import uvicorn

    from server.app import create_app
    from server.lifecycle import load_or_exit

    app = create_app(config, load_or_exit(config))  # a broken artifact exits here, at once
    # SIGTERM: uvicorn stops accepting, lets in-flight requests finish (up to the drain
    # timeout), then the lifespan closes the embedder; exit status 0.
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level=args.log_level.lower(),
        timeout_graceful_shutdown=config.drain_timeout_s))
    failed = []
    app.state.on_fatal = lambda: (failed.append(True), setattr(server, "should_exit", True))
    # uvicorn re-raises the SIGTERM it drained for to the handler it found; the default one
    # would kill us (status -15), so the one it finds says the drain is done: exit 0.
    signal.signal(signal.SIGTERM, lambda *_: log.info("drained after SIGTERM; exiting"))
    server.run()
    if failed or not server.started:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
