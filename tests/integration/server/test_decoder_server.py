"""Decoder embedding families through the real server: lengths, prompts, dimensions,
batching (each family's plain parity is in tests/parity/test_<family>.py).

One server per family (tiny random Qwen3-Embedding, gte-Qwen2, E5-Mistral checkpoints);
E5-Mistral's artifact carries its weights as ONNX external data.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np
import pytest

from tests.fixtures.decoder_server import FAMILIES, MIXED, SHORT, Served
from devtools.checkpoints.tiny_decoders import MAX_LEN, st_model
from tests.helpers import assert_parity, cosine_rows, decode_embeddings, running_server


@pytest.fixture(scope="module", params=FAMILIES)
def served(request: pytest.FixtureRequest,
           decoder_servers: Callable[[str], Served]) -> Served:
    return decoder_servers(request.param)


def text_with_tokens(tokenizer: Any, n: int) -> str:
    """A text that tokenises (special tokens included) to exactly n tokens."""
    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    text = "a"
    while count(text) < n:
        # The longest step that still fits: words first, then single characters.
        text += next((s for s in (" the", " z", "z", ".") if count(text + s) <= n), ".")
    assert count(text) == n and count(text + " the") > n, f"could not hit {n} tokens"
    return text


def assert_error(r: httpx.Response, param: str, code: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_input_at_max_length(served: Served) -> None:
    text = text_with_tokens(served.tokenizer, MAX_LEN)
    r = served.post(input=[text, "Short."])
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == MAX_LEN + len(
        served.tokenizer.encode("Short.").ids)
    assert_parity(decode_embeddings(r.json()), served.ref([text, "Short."]))


def test_over_max_length_is_400_unless_truncated(served: Served) -> None:
    text = text_with_tokens(served.tokenizer, MAX_LEN) + " z z z"
    assert_error(served.post(input=text), "input", "context_length_exceeded")
    r = served.post(input=[text], truncate=True)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == MAX_LEN
    assert_parity(decode_embeddings(r.json()), served.ref([text]))  # EOS kept at the cut
    assert httpx.get(f"{served.url}/health").status_code == 200


def test_prompt_name_applies_the_named_prompt(served: Served) -> None:
    name = served.prompt_name()
    ours = served.embed(SHORT, prompt_name=name)
    assert_parity(ours, served.ref(SHORT, prompt_name=name))
    assert cosine_rows(ours, served.embed(SHORT)).max() < 0.99


def test_unknown_prompt_name_is_400(served: Served) -> None:
    assert_error(served.post(input="hi", prompt_name="nope"), "prompt_name", "invalid_value")


def test_dimensions(served: Served) -> None:
    if served.name != "qwen3":  # not Matryoshka-trained
        assert_error(served.post(input="hi", dimensions=16), "dimensions",
                     "unsupported_parameter")
        return
    ref = served.ref(MIXED)
    for dims in (1, 16, 64):
        ours = served.embed(MIXED, dimensions=dims)
        assert ours.shape == (len(MIXED), dims)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        if dims > 1:
            assert_parity(ours, ref[:, :dims])
    for bad in (0, 65, -3):
        assert_error(served.post(input="hi", dimensions=bad), "dimensions", "invalid_value")


def expected(served: Served, text: str, prompt: str | None, dims: int | None) -> np.ndarray:
    vector = served.ref([text], prompt_name=prompt)[0]
    vector = vector[:dims] if dims else vector
    return vector / np.linalg.norm(vector)


def test_concurrent_requests_with_mixed_dimensions_and_prompts(served: Served) -> None:
    if served.name != "qwen3":
        pytest.skip("dimensions are a Matryoshka (Qwen3-Embedding) feature")
    cases = [(SHORT[i % len(SHORT)], ("query", None)[i % 2], (None, 8, 32)[i % 3])
             for i in range(12)]

    def one(case: tuple[str, str | None, int | None]) -> np.ndarray:
        text, prompt, dims = case
        extra = {k: v for k, v in (("prompt_name", prompt), ("dimensions", dims)) if v}
        return served.embed([text], **extra)[0]

    with ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(one, cases))
    for case, ours in zip(cases, results):
        want = expected(served, *case)
        assert ours.shape == want.shape
        assert float(ours @ want) >= 0.9999, case


def test_mixed_requests_share_one_batch(tiny_decoder_paths: dict[str, Path],
                                        tiny_decoder_artifacts: dict[str, Path]) -> None:
    """Requests with different prompts and dimensions ride in one backend batch, and each
    gets its own prompt and truncation back."""
    from runtime.pipeline.limits import BatchFlags
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder

    reference = st_model("qwen3", tiny_decoder_paths["qwen3"])
    served = Served("qwen3", "", reference, None)
    cases = [(SHORT[1], "query", 8), (MIXED[2], None, None), (SHORT[2], "query", None),
             (SHORT[0], None, 16)]
    # call_cost_tokens=0: one batch however mixed the lengths (cost-based cuts are tested
    # in tests/unit/runtime/test_batch_plan.py); one thread, one batch in flight: idle slots would
    # share the queue (tests/unit/runtime/test_batcher.py). This is about prompts and dimensions.
    config = RuntimeConfig(backend="onnxruntime", threads=1,
                           batch=BatchFlags(max_wait_ms=500, call_cost_tokens=0))

    async def run() -> tuple[list[np.ndarray], int]:
        embedder = Embedder.load(tiny_decoder_artifacts["qwen3"], config)
        await embedder.start()
        try:
            before = embedder.batcher.batches_run
            results = await asyncio.gather(*(
                embedder.embed_texts([text], prompt_name=prompt, dimensions=dims)
                for text, prompt, dims in cases))
            return [r.vectors[0] for r in results], embedder.batcher.batches_run - before
        finally:
            await embedder.close()

    vectors, batches = asyncio.run(run())
    assert batches == 1
    for case, ours in zip(cases, vectors):
        assert float(ours @ expected(served, *case)) >= 0.9999, case


@pytest.mark.timeout(120)
def test_embedder_stops_after_a_bad_request_among_batched_ones(
        tiny_decoder_artifacts: dict[str, Path]) -> None:
    """An over-long input fails while its neighbours wait in the gather window; stopping
    right then must not hang (asyncio.wait_for swallowed that cancel on Python 3.11)."""
    from runtime.pipeline.limits import BatchFlags
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder
    from runtime.errors import InvalidRequestError

    # call_cost_tokens=0: one batch however mixed the lengths (cost-based cuts are tested
    # in tests/unit/runtime/test_batch_plan.py); one thread, one batch in flight: idle slots would
    # share the queue (tests/unit/runtime/test_batcher.py). This is about prompts and dimensions.
    config = RuntimeConfig(backend="onnxruntime", threads=1,
                           batch=BatchFlags(max_wait_ms=500, call_cost_tokens=0))
    texts = [SHORT[1], "word " * (2 * MAX_LEN), SHORT[0]]

    async def run() -> None:
        embedder = Embedder.load(tiny_decoder_artifacts["qwen3"], config)
        await embedder.start()
        try:
            with pytest.raises(InvalidRequestError, match="more than this model's maximum"):
                await asyncio.gather(*(embedder.embed_texts([t]) for t in texts))
        finally:
            await asyncio.wait_for(embedder.close(), 20)

    asyncio.run(run())


def test_checkpoint_dir_is_built_on_first_use(tiny_decoder_paths: dict[str, Path],
                                              tmp_path: Path) -> None:
    """`--model-path <checkpoint>` as the SGLang seed runs it: built by a builder process."""
    path = tiny_decoder_paths["gte_qwen2"]
    with running_server(path, cache=tmp_path / "cache") as url:
        info = httpx.get(f"{url}/get_model_info").json()
        assert (info["model_type"], info["pooling"], info["embedding_dim"]) == (
            "gte_qwen2", "last", 64)
        assert info["architectures"] == ["Qwen2ForCausalLM"] and not info["matryoshka"]
        r = httpx.post(f"{url}/v1/embeddings", json={"input": SHORT}, timeout=60)
        assert r.status_code == 200, r.text
        assert_parity(decode_embeddings(r.json()),
                      st_model("gte_qwen2", path).encode(SHORT, normalize_embeddings=True))
