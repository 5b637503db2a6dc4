"""Every route of the server, registered in one place, one module per surface:

- server/embeddings_route.py: POST /v1/embeddings, answered ahead of FastAPI (OpenAI);
  server/openai_routes.py: GET /v1/models.
- server/sglang_routes.py: SGLang's native routes (/encode, /classify, /tokenize,
  /detokenize, /get_server_info, /get_model_info, /health_generate, /v1/score).
- server/tei_routes.py: TEI's /embed; server/heads_routes.py: TEI's /embed_sparse and
  /embed_all (sparse and multi-vector models).
- server/rerank_routes.py: /v1/rerank (SGLang), /rerank (TEI), /v2/rerank (Cohere/Jina).
- server/probe_routes.py: /health, /ready, /metrics.

A route that takes a `model` field finds its model with server.models.resolve (one
registry of the served models, issue 29).
"""

from __future__ import annotations

from fastapi import FastAPI

from server import (heads_routes, openai_routes, probe_routes, rerank_routes, sglang_routes,
                    tei_routes)
from server.config import ServerConfig
from server.lifecycle import Readiness
from server.metrics import Metrics


def register(app: FastAPI, config: ServerConfig, metrics: Metrics, readiness: Readiness) -> None:
    probe_routes.register(app, metrics, readiness)
    openai_routes.register(app)
    sglang_routes.register(app, config)
    tei_routes.register(app, config)
    heads_routes.register(app)
    rerank_routes.register(app)
