"""Every default the appliance's command lines share, and the flags that carry them, once.

The server (`python -m server.launch_server`), the bulk command (`python -m runtime.bulk`),
the builder (`python -m builder`) and the cache tool (`python -m runtime.artifact.cache`)
add these flags from here, so each has one default and one set of environment variables
everywhere (tests/unit/test_settings.py holds the four to it); what only one command has
stays with it. As SGLang's ServerArgs: the literals in one module, read by every entry
point. Pure: no heavy imports.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# Batching (runtime/pipeline/limits.py settles them per tower with the backend's and the plan's).
DEFAULT_BATCH_SIZE = 64  # rows per backend call
DEFAULT_BATCH_TOKENS = 16384  # padded tokens (rows x longest row) per backend call
DEFAULT_MAX_WAIT_MS = 1.0  # how long an idle batcher waits for company
DEFAULT_MAX_QUEUE = 8192  # queued rows beyond which requests get 429
DEFAULT_TRT_CONTEXTS = 2  # TensorRT execution contexts: batches in flight
# A CPU backend call's fixed cost in padded tokens, for batch planning (BENCHMARKS.md,
# design); a GPU's is measured at startup (runtime/pipeline/calibrate.py).
CPU_CALL_COST_TOKENS = 8
# Chunked long inputs (runtime/pipeline/chunking.py): tokens consecutive chunks share, as a
# fraction of a chunk's text (the model's maximum less its special tokens).
DEFAULT_CHUNK_OVERLAP_FRACTION = 0.125

# Backends: what the runtime can serve with, and what an artifact can be built for.
RUNTIME_BACKENDS = ("auto", "tensorrt", "tensorrt-rtx", "onnxruntime", "onnxruntime-cuda")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
DEFAULT_PRECISION = "fp32"  # a first-use or explicit build's, unless SGLang's --dtype says

CACHE_ENV = ("TRT_EMBED_CACHE", "ENGINE_CACHE")  # the appliance image sets ENGINE_CACHE
DEFAULT_CACHE = Path.home() / ".cache" / "trt-embed"
FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Flag:
    """One flag as every command line that has it declares it."""

    names: tuple[str, ...]
    env: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)  # add_argument's, default included


BACKEND = Flag(("--backend",), ("BACKEND",), dict(
    default="auto", choices=RUNTIME_BACKENDS,
    help="auto: TensorRT where the artifact's plan runs here, else ONNX Runtime on CUDA "
         "where onnxruntime-gpu sees a GPU, else on the CPU; a build: auto builds what "
         "this machine runs (onnxruntime without TensorRT)"))
PRECISION = Flag(("--precision",), ("PRECISION",), dict(
    default=None, choices=PRECISIONS,
    help=f"precision of a build (default {DEFAULT_PRECISION}; the server: SGLang's --dtype "
         "where given)"))
ARTIFACT_CACHE = Flag(("--artifact-cache",), CACHE_ENV, dict(
    type=Path, default=DEFAULT_CACHE,
    help="where checkpoints and hub ids are built on first use (default ~/.cache/trt-embed)"))
MAX_BATCH_SIZE = Flag(("--max-batch-size",), (), dict(
    type=int, default=None,
    help=f"rows per backend call (default {DEFAULT_BATCH_SIZE}; ONNX Runtime CUDA 256; "
         "never above a TensorRT plan's largest batch)"))
MAX_BATCH_TOKENS = Flag(("--max-batch-tokens",), (), dict(
    type=int, default=None,
    help=f"padded tokens (rows x longest row) per backend call (default "
         f"{DEFAULT_BATCH_TOKENS}, or on CPU, one-thread ONNX Runtime batches, 196608 / "
         "model width)"))
TRT_CONTEXTS = Flag(("--trt-contexts",), (), dict(
    type=int, default=DEFAULT_TRT_CONTEXTS,
    help="TensorRT execution contexts, one CUDA stream each (batches in flight)"))
BUILDER_PYTHON = Flag(("--builder-python",), ("BUILDER_PYTHON",), dict(
    default=None, help="the interpreter with torch that runs a first-use build (default: "
                       "this one)"))
CHUNK_LONG_INPUTS = Flag(("--chunk-long-inputs",), (), dict(
    action="store_true", default=False,
    help="texts past the model's maximum are split into overlapping chunks, embedded and "
         "pooled (token-weighted mean, renormalised) instead of refused (server: the "
         "default of requests that send no 'chunking')"))
CHUNK_OVERLAP = Flag(("--chunk-overlap",), (), dict(
    type=int, default=None,
    help=f"tokens consecutive chunks share (default {DEFAULT_CHUNK_OVERLAP_FRACTION:g} of a "
         "chunk's text: the model's maximum less its special tokens)"))

ENVIRONMENT: set[str] = set()  # every variable a flag reads (filled as parsers are built)


def env_value(names: tuple[str, ...]) -> str | None:
    """The first of `names` set to something: an empty variable counts as unset (compose
    and Dockerfiles write empty ones for "not given")."""
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def add(group: Any, *flags: str, env: tuple[str, ...] = (), **kw: Any) -> None:
    """add_argument, with the default taken from the first of `env` that is set."""
    ENVIRONMENT.update(env)
    value = env_value(env)
    if env:
        kw["help"] = f"{kw.get('help', '')} (env {' or '.join(env)})".lstrip()
    if value is not None:
        if kw.get("action") == "store_true":
            kw["default"] = value.strip().lower() not in FALSE
        elif kw.get("nargs") == "+":  # a list: comma- or space-separated
            kw["default"] = [v for v in re.split(r"[,\s]+", value) if v]
        else:
            convert: Callable[[str], Any] = kw.get("type", str)
            kw["default"] = convert(value)
            kw["required"] = False
    group.add_argument(*flags, **kw)


def add_flag(group: Any, flag: Flag, *aliases: str, **overrides: Any) -> None:
    """One shared flag on a parser or group, with a command's older spellings as
    `aliases`; `overrides` only for its help text."""
    unknown = set(overrides) - {"help"}
    if unknown:
        raise ValueError(f"{flag.names[0]}: only the help text may differ, not {unknown}")
    add(group, *flag.names, *aliases, env=flag.env, **{**flag.kwargs, **overrides})
