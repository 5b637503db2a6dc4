"""Property-based fuzzing of every operation in the app's own OpenAPI spec: no 5xx, ever.

Runs against a real in-process server on the real MiniLM artifact, with data that fits the
spec and data that breaks it; the example count is bounded so CI's 2 cores cope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.core.result import Ok

from tests.inprocess import serve, server_config, wait_for

EXAMPLES = 50  # per operation and generation mode
# /v1/embeddings has many optional fields, each with values that are 400 on MiniLM (a
# `dimensions` it is not trained for, a prompt it lacks, an output it does not give, chunking
# with truncate): schema-valid requests that are also valid for the model are rarer there.
EMBEDDINGS_POSITIVE = 200


def test_no_request_the_spec_allows_or_breaks_gets_a_5xx(minilm_artifact: Path) -> None:
    config = server_config(minilm_artifact, max_request_bytes=256 * 1024)
    with serve(config) as (url, app):
        wait_for(lambda: app.state.readiness.ready, "warm-up")
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result.err()  # the app's own spec must parse
            operations.append(result.ok())
        assert {op.path for op in operations} >= {"/v1/embeddings", "/health", "/ready"}
        for op in operations:
            _fuzz(op, GenerationMode.POSITIVE, url,
                  EMBEDDINGS_POSITIVE if op.path == "/v1/embeddings" else EXAMPLES)
            if len(op.body) or len(op.query):  # nothing to break in a bare GET
                _fuzz(op, GenerationMode.NEGATIVE, url)
        statuses = _statuses(app, "/v1/embeddings")
        assert sum(statuses.values()) >= EXAMPLES, statuses  # the fuzzing reached the handler
        assert 200 in statuses and 400 in statuses, statuses


def _statuses(app: FastAPI, path: str) -> dict[int, float]:
    return {int(s.labels["status"]): s.value
            for family in app.state.metrics.registry.collect() if family.name == "trt_embed_requests"
            for s in family.samples
            if s.name == "trt_embed_requests_total" and s.labels["path"] == path}


def _fuzz(op: APIOperation[Any, Any, Any, Any], mode: GenerationMode, url: str,
          examples: int = EXAMPLES) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, timeout=60)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)

    check()
