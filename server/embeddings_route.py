"""POST /v1/embeddings answered as plain ASGI, in front of FastAPI's routing.

On a CPU backend the event loop shares the cores with the model, so its cost per request
is throughput lost. FastAPI's layers (exception and exit-stack middleware, the router, the
request/response wrappers, dependency solving) took a large share of a one-sentence
request's time on the loop (BENCHMARKS.md, design); this path skips them. It sits inside
the app's own guards (metrics, API key, body cap), so those still apply, and its errors
come from the one mapping in server/errors.py. It is the endpoint's one declaration:
/openapi.json documents it from the same request model (server/app.py ApplianceApp.openapi).
"""

from __future__ import annotations

from typing import Any, Awaitable

from starlette.responses import Response

from runtime.adapters.heads import Output
from runtime.pipeline.embedder import Embedder, EmbeddingResult
from runtime.pipeline.heads import HeadsResult, resolve_output
from server import errors, heads_routes
from server.embedding_types import output_form, quantized_body
from server.encode import embeddings_body
from server.guards import ASGIApp, Receive, Scope, Send
from server.inputs import classify_input
from server.lifecycle import unless_disconnected
from server.metrics import CLIENT_CLOSED, SCOPE_KEY, Metrics
from server.models import EMBEDDING, ServedModels
from server.protocol import EmbeddingRequest, invalid, parse_request

PATH = "/v1/embeddings"


class Disconnected(Exception):
    """The client left while its body was still arriving."""


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def answer(models: ServedModels, metrics: Metrics, body: bytes, scope: Scope,
                 receive: Receive) -> Response:
    """The response to one embeddings request whose body has been read."""
    request = parse_request(body)
    served = models.resolve(request.model, EMBEDDING)  # one model: no lookup at all
    scope[SCOPE_KEY] = served.name
    config, emb = served.config, served.embedder
    kind, items = classify_input(request.input, config.max_inputs_per_request)
    output = resolve_output(emb, request.output)
    # Quantized forms are for dense vectors (heads_routes refuses them on the others).
    form = output_form(request) if output is Output.DENSE else None  # None: float, base64
    if form is not None:
        emb.quantizer.check(form.kinds, form.param)
    work: Awaitable[EmbeddingResult | HeadsResult] = (
        _embed(emb, kind, items, request) if output is Output.DENSE
        else heads_routes.embed_request(emb, kind, items, request, output))
    answered, result = await unless_disconnected(receive, work)
    if not answered:  # nobody to answer; its queued inputs never reach the backend
        metrics.model(served.name).disconnects.inc()
        return Response(status_code=CLIENT_CLOSED)
    assert result is not None
    metrics.model(served.name).prompt_tokens.inc(result.prompt_tokens)
    # The served name whatever the request says (SGLang does not echo it either).
    if not isinstance(result, EmbeddingResult):  # sparse or multi-vector output
        return Response(heads_routes.openai_body(result, config.served_model_name),
                        media_type="application/json")
    if form is not None:
        return Response(quantized_body(result.vectors, form, emb.quantizer,
                                       config.served_model_name, result.prompt_tokens,
                                       result.chunks), media_type="application/json")
    return Response(embeddings_body(result.vectors, request.encoding_format,
                                    config.served_model_name, result.prompt_tokens,
                                    result.chunks), media_type="application/json")


class EmbeddingsRoute:
    """Serves POST /v1/embeddings itself; everything else goes on to FastAPI."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        try:
            body = await read_body(receive)
            models: ServedModels = scope["app"].state.models
            response = await answer(models, self.metrics, body, scope, receive)
        except Disconnected:
            return  # nothing can be sent; the metrics layer records it as 499
        except Exception as exc:  # every error gets its mapped status and OpenAI body
            response = errors.response_for(exc)
        await response(scope, receive, send)


async def _embed(emb: Embedder, kind: str, items: list[Any], body: EmbeddingRequest
                 ) -> EmbeddingResult:
    if body.chunking and kind != "text":
        raise invalid("'chunking' splits texts; send the input as strings.", "chunking")
    if kind == "tokens":
        return await emb.embed_tokens(items, truncate=body.truncate, dimensions=body.dimensions)
    if kind == "text":
        return await emb.embed_texts(items, truncate=body.truncate,
                                     prompt_name=body.prompt_name, dimensions=body.dimensions,
                                     chunking=body.chunking, chunk_overlap=body.chunk_overlap)
    return await emb.embed_items(items, truncate=body.truncate, prompt_name=body.prompt_name,
                                 dimensions=body.dimensions)
