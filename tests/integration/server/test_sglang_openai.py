"""SGLang's own OpenAI-embedding server tests, re-expressed against this server.

Source: sgl-project/sglang test/srt/openai_server/basic/test_openai_embedding.py
(TestOpenAIEmbedding, TestMatryoshkaEmbedding, TestNonMatryoshkaEmbedding). SGLang runs
them on a small embedding model with `--is-embedding --enable-metrics` and an API key, and
the Matryoshka class on e5-large-v2 with `--json-model-override-args
'{"is_matryoshka": true, "matryoshka_dimensions": [...]}'`; here the bundled all-MiniLM
(384 wide) takes both roles, launched with the same flags, and every vector is also
checked against sentence-transformers (SGLang's tests only check lengths).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import openai
import pytest
from openai.types import CreateEmbeddingResponse

from tests.helpers import assert_parity, running_server, st_reference

API_KEY = "sk-123456"
SIZES = [128, 256, 384]  # SGLang's list was e5-large-v2's [128, 256, 512, 768, 1024]
IDS = [15339, 314, 703, 284, 612, 262, 10658, 10188, 286, 2061]  # SGLang's token ids


@pytest.fixture(scope="module")
def plain(minilm_artifact: Path) -> Iterator[openai.OpenAI]:
    """TestOpenAIEmbedding's and TestNonMatryoshkaEmbedding's server."""
    with running_server(minilm_artifact, "--api-key", API_KEY, "--enable-metrics") as url:
        yield openai.OpenAI(api_key=API_KEY, base_url=f"{url}/v1")


@pytest.fixture(scope="module")
def matryoshka(minilm_artifact: Path) -> Iterator[openai.OpenAI]:
    """TestMatryoshkaEmbedding's server (SGLang flags with no effect here ride along)."""
    override = json.dumps({"is_matryoshka": True, "matryoshka_dimensions": SIZES})
    with running_server(minilm_artifact, "--api-key", API_KEY, "--enable-metrics",
                        "--json-model-override-args", override,
                        "--served-model-name", "minilm", "--context-length", "12",
                        "--mem-fraction-static", "0.8", "--disable-radix-cache") as url:
        yield openai.OpenAI(api_key=API_KEY, base_url=f"{url}/v1")


def vectors(response: CreateEmbeddingResponse) -> np.ndarray:
    return np.array([d.embedding for d in response.data], dtype=np.float32)


def test_single_batch_and_single_item_list(plain: openai.OpenAI, minilm_path: Path) -> None:
    single = plain.embeddings.create(model="m", input="Hello world")
    batch = plain.embeddings.create(model="m", input=["Hello world", "Test text"])
    one = plain.embeddings.create(model="m", input=["Hello world"])
    assert (len(single.data), len(batch.data), len(one.data)) == (1, 2, 1)
    reference = st_reference(minilm_path, ["Hello world", "Test text"])
    assert_parity(vectors(batch), reference)
    assert_parity(vectors(single), reference[:1])
    assert_parity(vectors(one), reference[:1])
    # [CLS] hello world [SEP]; usage as SGLang's UsageInfo, completion_tokens 0.
    assert (single.usage.prompt_tokens, single.usage.total_tokens) == (4, 4)
    assert single.model_dump()["usage"]["completion_tokens"] == 0


def test_token_id_input_flat_and_nested(plain: openai.OpenAI) -> None:
    nested = plain.embeddings.create(model="m", input=[IDS])
    flat = plain.embeddings.create(model="m", input=IDS)
    assert len(nested.data) == len(flat.data) == 1
    np.testing.assert_allclose(vectors(nested), vectors(flat), atol=1e-6)
    assert vectors(flat).shape == (1, 384) and nested.usage.prompt_tokens == len(IDS)
    np.testing.assert_allclose(np.linalg.norm(vectors(flat)), 1.0, atol=1e-5)


def test_base64_is_the_float_vector(plain: openai.OpenAI) -> None:
    floats = plain.embeddings.create(model="m", input="Hello world", encoding_format="float")
    packed = plain.embeddings.create(model="m", input="Hello world")  # the SDK asks base64
    np.testing.assert_array_equal(vectors(floats), vectors(packed))


@pytest.mark.parametrize("text", ["", " ", "\n\t "])
def test_empty_and_whitespace_only_input_is_400(plain: openai.OpenAI, text: str) -> None:
    for given in (text, ["ok", text]):
        with pytest.raises(openai.BadRequestError) as caught:
            plain.embeddings.create(model="m", input=given)
        assert caught.value.status_code == 400


@pytest.mark.parametrize("given", ["Hello world", ["Text 1", "Text 2"]])
def test_non_matryoshka_model_rejects_dimensions(plain: openai.OpenAI,
                                                  given: str | list[str]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        plain.embeddings.create(model="m", input=given, dimensions=256)
    assert caught.value.status_code == 400
    full = plain.embeddings.create(model="m", input=["Hello world", "Test text", "Another"])
    assert vectors(full).shape == (3, 384)


def test_metrics_answer_without_the_key(plain: openai.OpenAI) -> None:
    url = str(plain.base_url).removesuffix("/v1/")
    assert httpx.get(f"{url}/metrics").status_code == 200  # --enable-metrics; open in SGLang
    assert httpx.get(f"{url}/v1/models").status_code == 401


def test_matryoshka_valid_dimensions(matryoshka: openai.OpenAI, minilm_path: Path) -> None:
    texts = ["Hello world", "Test text", "Another example"]
    reference = st_reference(minilm_path, texts)
    for dims in SIZES:
        got = vectors(matryoshka.embeddings.create(model="m", input=texts, dimensions=dims))
        assert got.shape == (3, dims)
        cut = reference[:, :dims] / np.linalg.norm(reference[:, :dims], axis=1, keepdims=True)
        assert_parity(got, cut)
    assert vectors(matryoshka.embeddings.create(model="m", input="Hello world")).shape == (1, 384)


@pytest.mark.parametrize("dims", [100, 0, -1, 10000])
def test_matryoshka_invalid_dimensions_are_400(matryoshka: openai.OpenAI, dims: int) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        matryoshka.embeddings.create(model="m", input="Hello world", dimensions=dims)
    assert caught.value.status_code == 400
    body = caught.value.body  # the SDK types it `object`: the JSON error, unwrapped
    assert isinstance(body, dict) and body["param"] == "dimensions"


def test_model_is_the_served_name_and_context_length_rejects_at_c(
        matryoshka: openai.OpenAI) -> None:
    answer = matryoshka.embeddings.create(model="whatever", input="Hello world")
    assert answer.model == "minilm"
    # --context-length 12: 11 tokens pass, 12 get 400 (SGLang: input_token_num >= context_len).
    eleven = [101] + [2088] * 9 + [102]
    assert len(matryoshka.embeddings.create(model="m", input=eleven).data) == 1
    with pytest.raises(openai.BadRequestError) as caught:
        matryoshka.embeddings.create(model="m", input=eleven + [102])
    assert caught.value.status_code == 400
