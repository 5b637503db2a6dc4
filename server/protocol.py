"""Every request model the server parses, one place: the OpenAI embeddings request (in
OpenAI's field order), SGLang's native routes, TEI's /embed, and the three rerank shapes.
Responses are built by their handlers (embeddings straight from numpy, server/encode.py)."""

from __future__ import annotations

from typing import Any, Literal, Union

import orjson
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from runtime.errors import InvalidRequestError

TokenIds = list[StrictInt]


class MultimodalItem(BaseModel):
    """One `{text, image}` item (multimodal models); either field may be absent."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr | None = None
    image: StrictStr | None = None


# Items may mix with plain strings (text items): ["a cat", {"image": ...}].
EmbeddingInput = Union[StrictStr, list[StrictStr], TokenIds, list[TokenIds],
                       list[Union[MultimodalItem, StrictStr]]]


# encoding_format: float/base64 (OpenAI), or one quantized type (server/embedding_types.py).
EncodingFormat = Literal["float", "base64", "int8", "uint8", "binary", "ubinary"]
EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary"]


class EmbeddingRequest(BaseModel):
    # Unknown fields are ignored, as SGLang and vLLM do, so richer clients keep working.
    model_config = ConfigDict(extra="ignore")

    input: EmbeddingInput
    # Routes to one of several served models (server/models.py); with one model served it
    # is accepted, not checked and not echoed (SGLang).
    model: StrictStr | None = None
    encoding_format: EncodingFormat = "float"
    dimensions: StrictInt | None = None
    user: StrictStr | None = None
    # Extensions shared with SGLang/vLLM/TEI clients.
    truncate: bool = False
    prompt_name: StrictStr | None = None
    # Cohere's embedding_types: each embedding becomes {type: vector} (server/embedding_types.py).
    embedding_types: list[EmbeddingType] | None = None
    # Over-long texts split into overlapping chunks, embedded and pooled
    # (runtime/pipeline/chunking.py); None: the server's --chunk-long-inputs.
    chunking: bool | None = None
    chunk_overlap: StrictInt | None = None  # tokens; None: the server's --chunk-overlap
    # Which output: "dense", "sparse" or "multi_vector" (server/heads_routes.py); None: the
    # model's first (dense where it has one).
    output: StrictStr | None = None


def invalid(message: str, param: str | None) -> InvalidRequestError:
    """A 400 for a request field's value (the one helper every route uses)."""
    return InvalidRequestError(message, param=param, code="invalid_value")


# SGLang's native routes (server/sglang_routes.py) and TEI's /embed (server/tei_routes.py)

IdRows = Union[list[StrictInt], list[list[StrictInt]]]


class EncodeRequest(BaseModel):
    """The part of SGLang's EmbeddingReqInput that an embedding server uses."""

    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None  # which served model (server/models.py)
    text: StrictStr | list[StrictStr] | None = None
    input_ids: IdRows | None = None
    image_data: StrictStr | list[StrictStr | None] | None = None
    dimensions: StrictInt | None = None
    rid: StrictStr | list[StrictStr] | None = None


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None  # which served model (server/models.py)
    prompt: StrictStr | list[StrictStr]
    add_special_tokens: bool = True


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None  # which served model (server/models.py)
    tokens: IdRows
    skip_special_tokens: bool = True


class TeiEmbedRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None  # which served model (server/models.py)
    inputs: StrictStr | list[StrictStr]
    normalize: bool = True
    truncate: bool = False
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"
    prompt_name: StrictStr | None = None
    dimensions: StrictInt | None = None


class TeiTokensRequest(BaseModel):
    """TEI's /embed_sparse and /embed_all (server/heads_routes.py)."""

    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None  # which served model (server/models.py)
    inputs: StrictStr | list[StrictStr]
    truncate: bool = False
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"
    prompt_name: StrictStr | None = None


# Reranking (server/rerank_routes.py)

class SglangRerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None  # which served model (server/models.py)
    query: StrictStr
    documents: list[StrictStr]
    instruct: StrictStr | None = None  # Qwen3-Reranker's instruction; cross-encoders: none
    top_n: int | None = None
    return_documents: bool = True


class TeiRerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None  # which served model (server/models.py)
    query: StrictStr
    texts: list[StrictStr]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None  # None: the server's --rerank-overflow


class CohereDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: StrictStr


class CohereRerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None
    query: StrictStr
    documents: list[StrictStr | CohereDocument]
    top_n: int | None = None
    return_documents: bool = False


class ScoreRequest(BaseModel):
    """SGLang's ScoringRequest, the part a cross-encoder answers: text query and items."""

    model_config = ConfigDict(extra="ignore")
    query: StrictStr
    items: StrictStr | list[StrictStr]
    apply_softmax: bool = False
    item_first: bool = False
    model: StrictStr | None = None



def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its $defs inlined: FastAPI does not register them as components, so a
    $ref would dangle in /openapi.json (schemathesis found this)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(schema)


REQUEST_SCHEMA = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": _inlined(EmbeddingRequest.model_json_schema())}}}}


def parse_request(raw: bytes) -> EmbeddingRequest:
    """JSON bytes -> EmbeddingRequest; any mistake -> InvalidRequestError (400)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request: it is not valid JSON.",
            param=None, code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", param=None,
                                  code="invalid_value")
    try:
        return EmbeddingRequest.model_validate(data)
    except ValidationError as exc:
        message, param = validation_message(exc.errors())
        raise InvalidRequestError(message, param=param, code="invalid_value") from exc


def validation_message(errors: list[Any]) -> tuple[str, str | None]:
    """The first pydantic error as an OpenAI-style message and the offending param."""
    if not errors:
        return "Invalid request.", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = loc[0] if loc else None
    if param is None:  # the body as a whole: not JSON, or not an object
        return ("The request body must be a JSON object, sent with Content-Type: "
                f"application/json ({first.get('msg')})."), None
    if param == "input":
        kind = "is required" if first.get("type") == "missing" else "is invalid"
        return (f"'input' {kind}: it must be a non-empty string, a list of strings, a list of "
                "token ids, a list of token-id lists, or a list of {text, image} items."), "input"
    if first.get("type") == "missing":
        return f"'{param}' is required.", param
    return f"Invalid value for '{'.'.join(loc)}': {first.get('msg')}.", param
