"""Which models one appliance serves, from its command line (issue 29): one launch's
flags become one set of flags per model.

Two forms, which may be combined (command-line models first):

- `--model-path` repeated, with `--served-model-name` given once per path or not at all;
  every other flag applies to every model.
- a models file (`--models-file PATH`, env MODELS_FILE) or its lines in env MODELS (the
  container's form; `;` also separates lines): one model per line,

      NAME  PATH  [per-model flags]      # e.g.  rerank BAAI/bge-reranker-base --precision fp16

  NAME is the served name, PATH what `--model-path` takes; the flags are the launcher's
  own (PER_MODEL), overriding the command line's for that model, plus `--alias NAME`
  (repeatable: more names requests may use). `#` starts a comment.

Flags that belong to the whole server (host, port, API key, limits per request, workers)
are refused on a line, with the line's number.
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
from pathlib import Path
from typing import NoReturn

from runtime.errors import ConfigError

# The launcher's flags a models-file line may set: what is built and how it is served.
PER_MODEL = frozenset({
    "--precision", "--dtype", "--backend", "--compute-capability", "--force-build",
    "--threads", "--max-batch-size", "--max-batch-tokens", "--batches-in-flight",
    "--trt-contexts", "--call-cost-tokens", "--max-wait-ms", "--max-queue",
    "--max-queue-wait-ms", "--context-length", "--json-model-override-args",
    "--chat-template", "--allow-auto-truncate", "--rerank-overflow", "--gme-image-range"})


class _LineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def line_parser(launcher: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The PER_MODEL flags exactly as the launcher declares them (types, choices), with no
    defaults: a line sets only what it names."""
    p = _LineParser(prog="models file", add_help=False, argument_default=argparse.SUPPRESS)
    for action in launcher._actions:
        if PER_MODEL & set(action.option_strings):
            clone = copy.copy(action)
            clone.option_strings = [o for o in action.option_strings if o in PER_MODEL]
            clone.default, clone.required = argparse.SUPPRESS, False
            p._add_action(clone)
    p.add_argument("--alias", dest="aliases", action="append")
    return p


def parse_line(line: str, parser: argparse.ArgumentParser, base: argparse.Namespace
               ) -> argparse.Namespace | None:
    """One line's model: `base` (the command line) with the line's name, path and flags;
    None for a blank or comment line."""
    words = shlex.split(line, comments=True)
    if not words:
        return None
    if len(words) < 2 or any(w.startswith("-") for w in words[:2]):
        raise ConfigError(f"{line.strip()!r}: a line is NAME PATH [per-model flags]")
    try:
        given = parser.parse_args(words[2:])
    except ConfigError as exc:
        raise ConfigError(f"{line.strip()!r}: {exc} (a line takes only "
                          f"{', '.join(sorted(PER_MODEL))} and --alias)") from exc
    model = _for_model(base, words[1], words[0])
    for key, value in vars(given).items():
        setattr(model, key, value)
    return model


def _for_model(base: argparse.Namespace, path: str, name: str | None) -> argparse.Namespace:
    model = copy.copy(base)
    model.model_path, model.served_model_name = path, name
    model.aliases = []
    return model


def models_text(args: argparse.Namespace) -> str:
    """The models file's lines: --models-file, else env MODELS; "" when neither."""
    if args.models_file is not None:
        try:
            return Path(args.models_file).read_text()
        except OSError as exc:
            raise ConfigError(f"--models-file {args.models_file}: {exc.strerror}") from exc
    return os.environ.get("MODELS", "").replace(";", "\n")


def command_line_models(args: argparse.Namespace) -> list[argparse.Namespace]:
    """One set of flags per --model-path; names pair with paths in order."""
    paths: list[str] = getattr(args, "model_paths", None) or (
        [args.model_path] if args.model_path else [])
    names: list[str] = getattr(args, "served_model_names", None) or (
        [args.served_model_name] if args.served_model_name else [])
    if len(paths) > 1 and names and len(names) != len(paths):
        raise ConfigError(f"{len(paths)} --model-path but {len(names)} --served-model-name: "
                          "give one name per path, or none (each is then served by its path)")
    if len(paths) == 1:  # exactly as a one-model launch always was
        return [args]
    return [_for_model(args, p, names[i] if names else None) for i, p in enumerate(paths)]


def launches(args: argparse.Namespace, launcher: argparse.ArgumentParser
             ) -> list[argparse.Namespace]:
    """Every model this launch serves, in order, each as the launcher's flags for it."""
    models = command_line_models(args)
    text = models_text(args)
    if text:
        parser = line_parser(launcher)
        models += [m for line in text.splitlines() if (m := parse_line(line, parser, args))]
    if not models:
        raise ConfigError("no model to serve: give --model-path, or lines in --models-file "
                          "or env MODELS")
    return models


def named(model: argparse.Namespace, exc: Exception) -> ConfigError:
    """A startup error about one of several models, naming it (one line)."""
    name = model.served_model_name or model.model_path
    return ConfigError(f"model {name!r}: {' '.join(str(exc).split())}")
