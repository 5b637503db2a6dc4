"""The server's flags, declared once, each with the environment variables it reads.

A flag given on the command line wins; else the first of its environment variables that is
set; else its default. The container's entrypoint is therefore a plain exec of the
launcher: MODEL, PORT, BACKEND... reach the same flags a user would type.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from runtime import settings
from runtime.served_model import IMAGE_RANGES
from runtime.settings import ENVIRONMENT, add, add_flag, env_value
# SGLang's launch_server flags, generated from its source by bench/sglang_flags.py.
SGLANG_FLAGS = Path(__file__).with_name("sglang_flags.json")
INERT = "sglang_inert:"  # dest prefix of the SGLang flags that have no effect here
MODELS_ENV = ("MODELS",)  # a models file's lines, for containers (docker/entrypoint.sh)
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")


def environment() -> frozenset[str]:
    """The environment variables the launcher's flags read."""
    parser()
    return frozenset(ENVIRONMENT | set(MODELS_ENV))


class Repeated(argparse.Action):
    """A flag that may be given several times (--model-path, --served-model-name: several
    models in one appliance): `dest` keeps the first value, what a one-model launch reads as
    before, and `dest + "s"` every value given, in order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = [*(getattr(namespace, self.dest + "s", None) or []), values]
        setattr(namespace, self.dest + "s", given)
        if len(given) == 1:
            setattr(namespace, self.dest, values)


class LaunchParser(argparse.ArgumentParser):
    """Models come from --model-path (repeatable, env MODEL) or a models file (--models-file,
    env MODELS_FILE, or the file's lines in env MODELS: server/models_file.py); at least one
    of them is required."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extra = super().parse_known_args(args, namespace)
        if not (parsed.model_path or parsed.models_file or env_value(MODELS_ENV)):
            self.error("the following arguments are required: --model-path/--model (or "
                       "--models-file, env MODELS_FILE or MODELS)")
        return parsed, extra


def parser(description: str = "") -> argparse.ArgumentParser:
    p = LaunchParser(prog="python -m server.launch_server", description=description,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _sglang_flags(p.add_argument_group("SGLang-compatible flags"))
    _artifact_flags(p.add_argument_group("artifact: what is served, built on first use"))
    _batch_flags(p.add_argument_group("batching and backend"))
    _reliability_flags(p.add_argument_group("limits, auth and shutdown"))
    _media_flags(p.add_argument_group("image inputs (multimodal models)"))
    _inert_flags(p)
    return p


def _sglang_flags(g: Any) -> None:
    add(g, "--model-path", "--model", env=("MODEL",), action=Repeated, default=None,
        help="artifact dir, checkpoint dir or hub id; repeat it to serve several models")
    g.add_argument("--is-embedding", action="store_true", help="accepted; always embedding")
    add(g, "--host", env=("HOST",), default="127.0.0.1")
    add(g, "--port", env=("PORT",), type=int, default=30000)
    g.add_argument("--chat-template", default=None, help="e.g. gme-qwen2-vl")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="accepted; families are built in")
    add(g, "--served-model-name", env=("SERVED_MODEL_NAME",), action=Repeated, default=None,
        help="the id /v1/models reports (default: --model-path); one per --model-path")
    g.add_argument("--allow-auto-truncate", action="store_true",
                   help="truncate over-long inputs instead of answering 400")
    g.add_argument("--log-level", default="info")
    add(g, "--context-length", env=("CONTEXT_LENGTH",), type=int, default=None,
        help="inputs of this many tokens or more get 400, as in SGLang (never more than "
             "the model's maximum)")
    g.add_argument("--json-model-override-args", default=None,
                   help='JSON merged into the model config; here is_matryoshka and '
                        'matryoshka_dimensions act, e.g. \'{"matryoshka_dimensions": [128, 256]}\'')
    g.add_argument("--enable-metrics", action="store_true",
                   help="accepted; /metrics is always served (without the API key, as SGLang)")
    g.add_argument("--dtype", default=None, choices=DTYPES,
                   help="precision of a first-use build: float16/half fp16, bfloat16 bf16, "
                        "float32/float fp32, auto the default (--precision wins)")


def _artifact_flags(g: Any) -> None:
    add(g, "--models-file", env=("MODELS_FILE",), type=Path, default=None,
        help="several models in one appliance, one line each: NAME PATH [per-model flags] "
             "(server/models_file.py); the same lines may come in env MODELS")
    add_flag(g, settings.BACKEND)
    add_flag(g, settings.ARTIFACT_CACHE)
    add_flag(g, settings.PRECISION)
    add(g, "--compute-capability", env=("COMPUTE_CAPABILITY",), nargs="+", default=[],
        help="targets of a first-use --backend tensorrt-rtx build, e.g. 8.9 12.0 "
             "(default: the library's portable set)")
    add(g, "--force-build", env=("FORCE_BUILD",), action="store_true",
        help="rebuild the cache entry even if it is up to date")
    add(g, "--build-only", env=("BUILD_ONLY",), action="store_true",
        help="build (or check) the cache entry, then exit 0: an init container or Job")
    add_flag(g, settings.BUILDER_PYTHON)


def _batch_flags(g: Any) -> None:
    add_flag(g, settings.MAX_BATCH_TOKENS)
    add_flag(g, settings.MAX_BATCH_SIZE)
    g.add_argument("--max-wait-ms", type=float, default=settings.DEFAULT_MAX_WAIT_MS,
                   help="how long an idle batcher waits for company")
    g.add_argument("--max-queue", type=int, default=settings.DEFAULT_MAX_QUEUE,
                   help="queued inputs before 429")
    g.add_argument("--max-inputs-per-request", type=int, default=2048)
    g.add_argument("--max-rerank-documents", type=int, default=1000,
                   help="documents per rerank request (rerankers); more: 400")
    g.add_argument("--rerank-overflow", choices=("truncate", "error"), default="truncate",
                   help="a (query, document) pair past the model's maximum: cut the "
                        "document (never the query), or answer 400")
    g.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads; 0: all cores")
    g.add_argument("--batches-in-flight", type=int, default=None,
                   help="batches the backend runs at once with an explicit --threads "
                        "(adaptive ONNX Runtime runs two per core; a larger value raises "
                        "that); TensorRT uses one per execution context; default 1")
    add(g, "--workers", env=("WORKERS",), type=int, default=0,
        help="server processes accepting on the one port, each with its own engine "
             "(server/workers.py); 0: auto (1, or on a GPU backend with a small graph one "
             "per 4 cores, at most 4)")
    g.add_argument("--call-cost-tokens", type=int, default=None,
                   help="a backend call's fixed cost in padded tokens, for batch planning "
                        "(a larger batch's padding against one more call); default: the "
                        "backend's own figure on CPU (8), measured at startup on a GPU; 0: "
                        "fill batches greedily")
    add_flag(g, settings.TRT_CONTEXTS)
    add_flag(g, settings.CHUNK_LONG_INPUTS)
    add_flag(g, settings.CHUNK_OVERLAP)


def _reliability_flags(g: Any) -> None:
    g.add_argument("--max-request-bytes", type=int, default=16 * 1024 * 1024,
                   help="request body cap; larger bodies get 413 without being read")
    g.add_argument("--max-tokens-per-request", type=int, default=300_000,
                   help="tokens summed over a request's inputs; more: 400")
    g.add_argument("--max-queue-wait-ms", type=float, default=0.0,
                   help="503 for a request none of whose inputs reached the model in this "
                        "time (0: no limit)")
    add(g, "--memory-budget-gib", env=("MEMORY_BUDGET_GIB",), type=float, default=None,
        help="memory the models may use (weights and largest batches, summed over the "
             "models: server/memory_fit.py); a start that would need more is refused "
             "(default: the GPU's free memory, or the CPU's MemAvailable)")
    add(g, "--api-key", env=("TRT_EMBED_API_KEY",), default=None,
        help="require 'Authorization: Bearer KEY' on every route but /health*, /ready "
             "and /metrics (as SGLang)")
    add(g, "--drain-timeout", env=("DRAIN_TIMEOUT",), type=int, default=30,
        help="seconds in-flight requests get to finish after SIGTERM (keep the "
             "container's stop timeout above drain delay + this)")
    add(g, "--drain-delay", env=("DRAIN_DELAY",), type=float, default=0.0,
        help="seconds between SIGTERM and the listener closing: /ready answers 503 and "
             "requests are still served, so load balancers that probe /ready stop sending "
             "first")


def _media_flags(g: Any) -> None:
    g.add_argument("--allowed-media-domains", nargs="*", default=[],
                   help="hosts whose image URLs may resolve to loopback/private addresses")
    g.add_argument("--allowed-local-media-path", type=Path, default=None,
                   help="serve local image paths under this directory (refused otherwise)")
    g.add_argument("--media-timeout", type=float, default=10.0, help="seconds per image fetch")
    g.add_argument("--max-image-bytes", type=int, default=20 * 1024 * 1024)
    g.add_argument("--gme-image-range", choices=IMAGE_RANGES, default="checkpoint",
                   help="GME image sizes: checkpoint (default, as SGLang: the checkpoint's "
                        "preprocessor_config.json min/max pixels, the top capped at 1280 "
                        "tokens) or gme (GME's own scripts: 256..1280 tokens, the model "
                        "card's setting)")
    g.add_argument("--max-image-pixels", type=int, default=32_000_000,
                   help="width x height above which an image is refused before decoding")


def _inert_flags(p: argparse.ArgumentParser) -> None:
    """Every other SGLang flag: parsed (with its value) so an SGLang command line starts,
    hidden from --help, and reported by `inert_given` as having no effect here."""
    for flag in json.loads(SGLANG_FLAGS.read_text())["flags"]:
        names = [n for n in flag["names"] if n not in p._option_string_actions]
        if len(names) < len(flag["names"]):
            continue  # declared above, with its meaning here
        kw: dict[str, Any] = {"dest": INERT + names[0], "default": argparse.SUPPRESS,
                              "help": argparse.SUPPRESS}
        if flag["takes_value"]:
            kw["nargs"] = flag["nargs"]  # choices unchecked: the value is not used
        else:
            kw["action"] = "store_true"
        p.add_argument(*names, **kw)


def inert_given(args: argparse.Namespace) -> list[str]:
    """The SGLang flags on this command line that have no effect in this server."""
    return sorted(k[len(INERT):] for k in vars(args) if k.startswith(INERT))
