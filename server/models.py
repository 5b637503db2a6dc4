"""The models one appliance serves (issue 29), and the one function every route resolves a
request's `model` through.

A route that takes a `model` field asks:

    served = resolve(request, body.model, RERANK)      # a FastAPI route (its Request)
    served.embedder   # the model's runtime.pipeline.embedder.Embedder
    served.config     # its ServerConfig: served name, path, aliases, per-model flags

(`ServedModels.resolve(name, kind)` is the same without a Request: the /v1/embeddings fast
path calls it on `app.state.models`.) The rules, in resolve's order:

- one model served: it answers whatever `model` says (SGLang's behaviour, as before);
- `model` given: the model whose served name, path (as launched, where no other model
  has the same path) or alias it is; anything else is ModelNotFoundError (404, `code: model_not_found`, naming the served models);
- `model` absent (TEI's /embed and /rerank have no such field): the first model launched of
  the route's kind (embedding or rerank), else the first model (which then answers the
  route's usual 400 `unsupported_model`).

Each model has its own Embedder: its own batchers and queues, so one model's flood waits in
its own queue and never ahead of another's requests (server/launch_server.py shares the
CPU's cores between them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from runtime.adapters.base import Capability
from runtime.errors import ConfigError, ModelNotFoundError
from runtime.pipeline.embedder import Embedder
from server.config import ServerConfig
from server.metrics import SCOPE_KEY  # the resolved model's name, for the model label

EMBEDDING, RERANK = "embedding", "rerank"  # what /v1/models calls each kind


def kind_of(embedder: Embedder) -> str:
    return RERANK if embedder.adapter.can(Capability.SCORE_PAIRS) else EMBEDDING


@dataclass(frozen=True)
class ServedModel:
    config: ServerConfig
    embedder: Embedder

    @property
    def name(self) -> str:
        return self.config.served_model_name

    @property
    def kind(self) -> str:
        return kind_of(self.embedder)


def route_names(configs: Sequence[ServerConfig]) -> list[tuple[str, ...]]:
    """Every name a request may use for each model: its served name, its aliases, and its
    path, unless another model shares the path (one checkpoint served at two precisions,
    say: then only their names tell them apart)."""
    paths = Counter(c.model_path for c in configs)
    return [tuple(dict.fromkeys((c.served_model_name, *c.aliases,
                                 *([c.model_path] if paths[c.model_path] == 1 else []))))
            for c in configs]


def check_names(configs: Sequence[ServerConfig]) -> None:
    """Two models answering to one name would make routing depend on launch order: refused
    at startup (ConfigError, one line)."""
    owner: dict[str, str] = {}
    for config, names in zip(configs, route_names(configs)):
        for name in names:
            if name in owner:
                raise ConfigError(f"the name {name!r} would route to two models "
                                  f"({owner[name]!r} and {config.served_model_name!r}); "
                                  "give each a distinct served name and aliases")
            owner[name] = config.served_model_name


class ServedModels:
    """The registry: every served model by each of its names, in launch order."""

    def __init__(self, models: Sequence[ServedModel]):
        if not models:
            raise ConfigError("no model to serve")
        configs = [m.config for m in models]
        check_names(configs)
        self.all = tuple(models)
        self.first = self.all[0]
        self.single = len(self.all) == 1
        self._by_name = {name: m for m, names in zip(self.all, route_names(configs))
                         for name in names}
        self._by_kind: dict[str, ServedModel] = {}
        for m in self.all:
            self._by_kind.setdefault(m.kind, m)

    def resolve(self, name: str | None, kind: str | None = None) -> ServedModel:
        if self.single:
            return self.first
        if name is None:
            return self._by_kind.get(kind or EMBEDDING, self.first)
        found = self._by_name.get(name)
        if found is None:
            raise ModelNotFoundError(
                f"The model {name!r} does not exist here. This server serves: "
                f"{', '.join(m.name for m in self.all)}.")
        return found

    def embedders(self) -> list[Embedder]:
        return [m.embedder for m in self.all]


def resolve(request: Any, name: str | None, kind: str | None = None) -> ServedModel:
    """The model a FastAPI route's request is for (see the module docstring); the model's
    name goes on the ASGI scope, where the metrics layer labels the request with it."""
    served = models_of(request.app.state).resolve(name, kind)
    request.scope[SCOPE_KEY] = served.name
    return served


def models_of(state: Any) -> ServedModels:
    models: ServedModels = state.models
    return models


def pick(models: ServedModels, name: str | None) -> list[ServedModel]:
    """The models an info route (/get_model_info, /get_server_info) describes: the one
    named, else every one."""
    return [models.resolve(name)] if name is not None else list(models.all)

