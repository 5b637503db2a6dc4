"""SGLang's native routes and TEI's /embed, in their request and response shapes.

SGLang 0.5.23 (srt/entrypoints/http_server.py):
- POST/PUT /encode: an EmbeddingReqInput (`text` or `input_ids`, `image_data`,
  `dimensions`) -> {"embedding", "meta_info"} for one input, a list of them for several.
- POST/PUT /classify: the same shapes, for a sequence-classification model (a
  cross-encoder: each text alone through its template): "embedding" holds the class
  logits, as SGLang's /classify returns a classifier's output; other models get 400.
- POST /tokenize and /v1/tokenize: {prompt: str | [str], add_special_tokens} ->
  {tokens, count, max_model_len} (serving_tokenize.py).
- POST /detokenize and /v1/detokenize: {tokens: [int] | [[int]], skip_special_tokens} ->
  {text} (serving_tokenize.py).
- GET /get_server_info (deprecated there) and /server_info: the launch configuration.
- POST /v1/score: label-token logprobs of a generative model, or the class logits of a
  sequence-classification model (managers/tokenizer_manager_score_mixin.py); for an
  embedding model SGLang would hand back the pooled embedding of query + item as "scores",
  which is not a score, so this server answers 400 saying what to use instead; a
  cross-encoder answers its class logits (server/rerank_routes.py v1_score).
- GET /get_model_info, /health_generate (a real forward pass).
Errors go through server/errors.py (OpenAI's nested body) like every other route.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict
from typing import Any, Callable

from fastapi import FastAPI, Request, Response

from runtime.adapters.base import Capability
from runtime.pipeline.embedder import Embedder, EmbeddingResult
from runtime.errors import InvalidRequestError
from server.config import ServerConfig
from server.inputs import classify_input
from server.models import EMBEDDING, RERANK, ServedModel, models_of, pick, resolve
from server import rerank_routes
from server.protocol import (DetokenizeRequest, EncodeRequest, MultimodalItem,
                             TokenizeRequest, invalid)


def _encode_items(req: EncodeRequest) -> tuple[bool, str, list[Any]]:
    """(one input?, kind, one entry per input) from text / input_ids / image_data."""
    if (req.text is None) == (req.input_ids is None) and req.image_data is None:
        raise invalid("Send exactly one of 'text' and 'input_ids'.", "text")
    if req.image_data is not None:
        images = [req.image_data] if isinstance(req.image_data, str) else req.image_data
        texts = req.text if isinstance(req.text, list) else [req.text] * len(images)
        if len(texts) != len(images):
            raise invalid("'text' and 'image_data' must have as many entries.", "image_data")
        # classify_input checks each item as /v1/embeddings does (text or image, not empty)
        return isinstance(req.image_data, str), *classify_input(
            [MultimodalItem(text=t, image=i) for t, i in zip(texts, images)], 1 << 30)
    if req.input_ids is not None:
        single = bool(req.input_ids) and isinstance(req.input_ids[0], int)
        return single, *classify_input(req.input_ids, 1 << 30)
    return isinstance(req.text, str), *classify_input(req.text, 1 << 30)


async def _one(emb: Embedder, kind: str, item: Any, dims: int | None) -> EmbeddingResult:
    if kind == "tokens":
        return await emb.embed_tokens([item], dimensions=dims)
    if kind == "text":
        return await emb.embed_texts([item], dimensions=dims)
    return await emb.embed_items([item], dimensions=dims)


async def encode(emb: Embedder, req: EncodeRequest, max_inputs: int) -> Any:
    single, kind, items = _encode_items(req)
    if len(items) > max_inputs:
        raise invalid(f"At most {max_inputs} inputs are allowed per request.", "text")
    # One call per input (the batcher joins them) so each gets its own prompt_tokens.
    results = await asyncio.gather(*(_one(emb, kind, x, req.dimensions) for x in items))
    out = [{"embedding": r.vectors[0].tolist(),
            "meta_info": {"id": uuid.uuid4().hex, "prompt_tokens": r.prompt_tokens}}
           for r in results]
    return out[0] if single else out


async def classify(emb: Embedder, req: EncodeRequest, max_inputs: int) -> Any:
    """SGLang's /classify: a sequence-classification model's class logits in /encode's
    shape ({"embedding": logits, "meta_info"}); texts only (a cross-encoder reads text)."""
    if req.text is None or req.input_ids is not None or req.image_data is not None:
        raise invalid("/classify takes 'text' (a string or a list of strings).", "text")
    single, _, texts = _encode_items(req)
    if len(texts) > max_inputs:
        raise invalid(f"At most {max_inputs} inputs are allowed per request.", "text")
    results = await asyncio.gather(*(emb.classify([t]) for t in texts))
    out = [{"embedding": [float(r.scores[0])],
            "meta_info": {"id": uuid.uuid4().hex, "prompt_tokens": r.prompt_tokens}}
           for r in results]
    return out[0] if single else out


def tokenize(emb: Embedder, req: TokenizeRequest) -> dict[str, Any]:
    texts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    rows = emb.tokenizer.ids(texts, req.add_special_tokens)
    if isinstance(req.prompt, str):
        return {"tokens": rows[0], "count": len(rows[0]), "max_model_len": emb.spec.max_len}
    return {"tokens": rows, "count": [len(r) for r in rows], "max_model_len": emb.spec.max_len}


def detokenize(emb: Embedder, req: DetokenizeRequest) -> dict[str, Any]:
    if not req.tokens:
        return {"text": ""}
    if isinstance(req.tokens[0], int):
        return {"text": emb.tokenizer.decode([req.tokens], req.skip_special_tokens)[0]}
    return {"text": emb.tokenizer.decode(req.tokens, req.skip_special_tokens)}


def server_info(config: ServerConfig, emb: Embedder, version: str) -> dict[str, Any]:
    """The launch configuration as served (the API key left out)."""
    return {"model_path": config.model_path, "served_model_name": config.served_model_name,
            "host": config.host, "port": config.port, "is_embedding": True,
            "context_length": emb.spec.max_len + 1, "backend": emb.backend.name,
            "max_inputs_per_request": config.max_inputs_per_request,
            "max_request_bytes": config.max_request_bytes, "runtime": asdict(config.runtime),
            "api_key_required": config.api_key is not None, "version": version}


def score() -> None:
    raise InvalidRequestError(
        "/v1/score scores with a generative model (label-token log-probabilities) or a "
        "sequence-classification model (class logits); this model is neither: an embedding "
        "model's output is a vector (embed the query and the items with /v1/embeddings and "
        "compare them), a Qwen3-Reranker's is P(yes) (POST /v1/rerank).", param=None,
        code="unsupported_model")


def model_info(config: ServerConfig, emb: Embedder) -> dict[str, Any]:
    """SGLang's /get_model_info, and what this server adds (pooling, backend...)."""
    return {
        "model_path": config.model_path, "tokenizer_path": str(emb.artifact.tokenizer_path),
        "is_generation": False, "preferred_sampling_params": None, "weight_version": None,
        "has_image_understanding": "image" in emb.spec.modalities,
        "has_audio_understanding": False, "model_type": emb.spec.family,
        "architectures": [emb.spec.architecture], "embedding_dim": emb.spec.dims,
        "max_model_len": emb.spec.max_len, "pooling": emb.spec.pooling,
        "normalized": emb.spec.normalize, "matryoshka": emb.spec.matryoshka,
        "backend": emb.backend.name,
    }


def described(models: list[ServedModel], describe: Callable[[ServedModel], dict[str, Any]]
              ) -> dict[str, Any]:
    """One model's description as SGLang gives it; with several served (no `model` query
    asked for one), the first's, plus every model's under "models"."""
    first = describe(models[0])
    return first if len(models) == 1 else {**first, "models": [describe(m) for m in models]}


def register(app: FastAPI, config: ServerConfig) -> None:
    """The routes above, on `app`; each finds its model with server.models.resolve."""
    def emb(request: Request, model: str | None, kind: str = EMBEDDING) -> Embedder:
        return resolve(request, model, kind).embedder

    @app.get("/get_model_info")
    async def model_info_route(request: Request, model: str | None = None) -> dict[str, Any]:
        return described(pick(models_of(request.app.state), model),
                         lambda m: model_info(m.config, m.embedder))

    @app.get("/health_generate")
    async def health_generate(request: Request) -> Response:
        for served in models_of(request.app.state).embedders():  # a real pass on each
            if served.adapter.can(Capability.SCORE_PAIRS):  # of the kind it serves
                await served.rerank("health check", ["health check"])
            else:
                await served.embed_texts(["health check"])
        return Response(status_code=200)

    async def encode_route(body: EncodeRequest, request: Request) -> Any:
        return await encode(emb(request, body.model), body, config.max_inputs_per_request)

    async def classify_route(body: EncodeRequest, request: Request) -> Any:
        return await classify(emb(request, body.model, RERANK), body,
                              config.max_inputs_per_request)

    rerank_routes.post_and_put(app, "/encode", encode_route)
    rerank_routes.post_and_put(app, "/classify", classify_route)

    @app.post("/tokenize")
    @app.post("/v1/tokenize")
    async def tokenize_route(body: TokenizeRequest, request: Request) -> dict[str, Any]:
        return tokenize(emb(request, body.model), body)

    @app.post("/detokenize")
    @app.post("/v1/detokenize")
    async def detokenize_route(body: DetokenizeRequest, request: Request) -> dict[str, Any]:
        return detokenize(emb(request, body.model), body)

    @app.get("/get_server_info")
    @app.get("/server_info")
    async def server_info_route(request: Request, model: str | None = None) -> dict[str, Any]:
        return described(pick(models_of(request.app.state), model),
                         lambda m: server_info(m.config, m.embedder, request.app.version))

    @app.post("/v1/score")
    async def score_route(request: Request) -> Any:
        req = rerank_routes.score_request(await request.body())
        served = resolve(request, req.model, RERANK)
        if served.embedder.adapter.can(Capability.CLASSIFY):  # sequence classification
            return await rerank_routes.v1_score(served.embedder, served.config, req)
        score()
