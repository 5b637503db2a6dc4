"""The real server on the real default model: requests, usage, errors, info routes, many
clients (its plain parity: tests/parity/test_bert.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import requests
from tokenizers import Tokenizer

from tests.helpers import assert_parity, cosine_rows, decode_embeddings, st_reference
from server.encode import usage

TEXTS = [
    "What is the capital of France?",
    "x",
    "Ünïcödé façade — naïve café, Straße, Ελληνικά, русский, 中文字符, 日本語のテキスト",
    "Emoji only 🙂🚀🔥👩‍💻 and a thumbs up 👍🏽",
    "   leading, \t tabs,\n\nnewlines   and    runs of   spaces   ",
    "A longer sentence about dynamic batching, token budgets and padding-aware schedulers.",
    "near max " + "alpha beta gamma delta " * 62,  # ~250 tokens of the 256 maximum
]


@pytest.fixture(scope="module")
def reference(minilm_path: Path) -> np.ndarray:
    return st_reference(minilm_path, TEXTS)


@pytest.fixture(scope="module")
def tokenizer(minilm_artifact: Path) -> Tokenizer:
    return Tokenizer.from_file(str(minilm_artifact / "tokenizer.json"))


def embed(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json=body, timeout=60)


def test_near_max_text_is_near_the_limit(tokenizer: Tokenizer) -> None:
    assert 240 <= len(tokenizer.encode(TEXTS[-1]).ids) <= 256


def test_response_shape_and_served_name(minilm_server: str, minilm_artifact: Path) -> None:
    """Vectors themselves: tests/parity/test_bert.py."""
    body = embed(minilm_server, input=TEXTS, model="anything").json()
    assert body["object"] == "list" and body["model"] == str(minilm_artifact)  # SGLang: served
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    assert all(d["object"] == "embedding" for d in body["data"])


def test_seed_request_verbatim(minilm_server: str, minilm_path: Path,
                               minilm_artifact: Path) -> None:
    url = minilm_server
    payload = {
        "model": "Qwen/Qwen3-Embedding-4B",
        "input": "What is the capital of France?",
        "encoding_format": "float"
    }
    response = requests.post(url + "/v1/embeddings", json=payload).json()
    embedding = response["data"][0]["embedding"]
    assert len(embedding) == 384 and response["model"] == str(minilm_artifact)
    assert_parity(np.array([embedding], dtype=np.float32),
                  st_reference(minilm_path, ["What is the capital of France?"]))


def test_openai_sdk_base64_default_and_float(minilm_server: str, reference: np.ndarray) -> None:
    client = openai.OpenAI(base_url=f"{minilm_server}/v1", api_key="unused")
    default = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS[:3])
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS[:3],
                                      encoding_format="float")
    for result in (default, floats):
        got = np.array([d.embedding for d in result.data], dtype=np.float32)
        assert_parity(got, reference[:3])
    assert default.usage.prompt_tokens == floats.usage.prompt_tokens > 0


def test_token_ids_equal_text_and_usage_is_exact(minilm_server: str, tokenizer: Tokenizer) -> None:
    ids = [tokenizer.encode(t).ids for t in TEXTS]
    by_text = embed(minilm_server, input=TEXTS).json()
    by_ids = embed(minilm_server, input=ids).json()
    single = embed(minilm_server, input=ids[0]).json()
    np.testing.assert_allclose(decode_embeddings(by_ids), decode_embeddings(by_text), atol=1e-6)
    np.testing.assert_allclose(decode_embeddings(single)[0], decode_embeddings(by_text)[0],
                               atol=1e-6)
    total = sum(len(i) for i in ids)
    assert by_text["usage"] == by_ids["usage"] == usage(total)
    assert single["usage"]["prompt_tokens"] == len(ids[0])
    # "x" is [CLS] x [SEP]: special tokens count.
    assert embed(minilm_server, input="x").json()["usage"]["prompt_tokens"] == 3


def test_truncate_on_request(minilm_server: str, minilm_path: Path) -> None:
    long_text = "truncate me " * 200
    refused = embed(minilm_server, input=long_text)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"
    cut = embed(minilm_server, input=long_text, truncate=True).json()
    assert cut["usage"]["prompt_tokens"] == 256
    assert_parity(decode_embeddings(cut), st_reference(minilm_path, [long_text]))


def err(message_part: str, param: str | None, code: str | None) -> tuple:
    return (message_part, param, code)


ERROR_CASES = [
    (b"{not json", err("not valid JSON", None, "invalid_json")),
    (b'"just a string"', err("JSON object", None, "invalid_value")),
    (b'{"model": "m"}', err("'input' is required", "input", "invalid_value")),
    (b'{"input": 42}', err("'input' is invalid", "input", "invalid_value")),
    (b'{"input": {"text": 1}}', err("'input' is invalid", "input", "invalid_value")),
    (b'{"input": ""}', err("empty or whitespace", "input", "invalid_value")),
    (b'{"input": []}', err("must not be empty", "input", "invalid_value")),
    (b'{"input": [[]]}', err("must not be empty", "input", "invalid_value")),
    (b'{"input": "hi", "encoding_format": "hex"}',
     err("'encoding_format'", "encoding_format", "invalid_value")),
    (b'{"input": [101, -1, 102]}', err("Invalid token id -1", "input", "invalid_token_id")),
    (b'{"input": [[101, 30522]]}', err("Invalid token id 30522", "input", "invalid_token_id")),
    (b'{"input": "' + b"word " * 300 + b'"}',
     err("maximum of 256", "input", "context_length_exceeded")),
    (b'{"input": [' + b"2000, " * 300 + b'2000]}',
     err("maximum of 256", "input", "context_length_exceeded")),
    (b'{"input": "hi", "dimensions": 128}',
     err("does not support the 'dimensions'", "dimensions", "unsupported_parameter")),
    (b'{"input": [{"image": "data:image/png;base64,AAAA"}]}',
     err("does not accept images", "input", "unsupported_modality")),
]


@pytest.mark.parametrize("raw, expected", ERROR_CASES, ids=[c[0][:30].decode() for c in ERROR_CASES])
def test_client_mistakes_are_400_with_openai_body(minilm_server: str, raw: bytes,
                                                  expected: tuple) -> None:
    message_part, param, code = expected
    r = httpx.post(f"{minilm_server}/v1/embeddings", content=raw,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(r.json()) == {"error"}
    assert set(error) == {"message", "type", "param", "code"}
    assert message_part in error["message"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert httpx.get(f"{minilm_server}/health").status_code == 200
    assert embed(minilm_server, input="still fine").status_code == 200


def test_info_routes(minilm_server: str, minilm_artifact: Path) -> None:
    assert httpx.get(f"{minilm_server}/health").status_code == 200
    info = httpx.get(f"{minilm_server}/get_model_info").json()
    assert info["model_path"] == str(minilm_artifact) and info["is_generation"] is False
    assert info["embedding_dim"] == 384 and info["max_model_len"] == 256
    models = httpx.get(f"{minilm_server}/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == str(minilm_artifact)


async def test_100_concurrent_clients_each_get_their_own_vectors(minilm_server: str,
                                                                 minilm_path: Path) -> None:
    texts = [f"client {i} asks about topic number {i * 7919 % 1000} " + "detail " * (i % 13)
             for i in range(100)]
    reference = st_reference(minilm_path, texts)

    async with httpx.AsyncClient(base_url=minilm_server, timeout=120,
                                 limits=httpx.Limits(max_connections=100)) as client:
        async def one(i: int) -> np.ndarray:
            payload = [texts[i]] if i % 3 else [texts[i], texts[(i + 1) % 100]]
            r = await client.post("/v1/embeddings", json={"input": payload,
                                  "encoding_format": "base64" if i % 2 else "float"})
            assert r.status_code == 200
            return decode_embeddings(r.json())

        results = await asyncio.gather(*(one(i) for i in range(100)))
    for i, got in enumerate(results):
        expected = reference[[i]] if i % 3 else reference[[i, (i + 1) % 100]]
        assert_parity(got, expected)
        # and it is not a neighbour's vector: its own reference is the best match
        assert int(np.argmax(reference @ got[0])) == i
    assert cosine_rows(results[1], reference[[1]]).min() > 0.9999
