"""Chunked long inputs over HTTP (runtime/pipeline/chunking.py) against the same done by hand
with the reference model: all-MiniLM's sentence-transformers model on the chunks (tokenise
without special tokens, split with the overlap, add [CLS]/[SEP], encode, token-weighted mean,
normalise)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pytest

from runtime.artifact import Artifact
from runtime.pipeline.choose import load_backend
from runtime.pipeline.embedder import Embedder
from runtime.pipeline.limits import BatchFlags
from tests.fixtures.chunk_reference import MAX_LEN, WIDTH, ByHand, long_text
from tests.helpers import assert_parity, cosine_rows
from tests.inprocess import embedding_rows as data, post_embeddings as post, serve, server_config


@pytest.fixture(scope="module")
def by_hand(minilm_path: Path) -> ByHand:
    return ByHand(minilm_path)


@pytest.fixture(scope="module")
def url(minilm_artifact: Path) -> Iterator[str]:
    with serve(server_config(minilm_artifact)) as (base, _):
        yield base




@pytest.mark.parametrize("words, overlap", [(600, None), (560, 0), (420, 100)])
def test_chunked_vector_is_the_reference_on_the_same_chunks(
        url: str, by_hand: ByHand, words: int, overlap: int | None) -> None:
    text = long_text(words)
    used = WIDTH // 8 if overlap is None else overlap  # the default: an eighth of 254: 31
    body: dict[str, Any] = {"input": [text], "chunking": True}
    if overlap is not None:
        body["chunk_overlap"] = overlap
    r = post(url, **body)
    rows = by_hand.chunks(text, used)
    assert len(rows) >= 2 and len(rows[-1]) < MAX_LEN - 50  # a short last chunk
    assert r.json()["usage"]["chunks"] == len(rows)
    assert r.json()["usage"]["prompt_tokens"] == sum(map(len, rows))
    assert r.json()["usage"]["total_tokens"] == sum(map(len, rows))
    ours = data(r)
    weighted = by_hand.embed(text, used)[None]
    assert_parity(ours, weighted, 0.9999)
    # Token-weighted, not a plain mean: ours is nearer the weighted reference.
    plain = by_hand.embed(text, used, weighted=False)[None]
    assert 1 - cosine_rows(ours, weighted)[0] < (1 - cosine_rows(ours, plain)[0]) / 10


def test_short_inputs_beside_long_ones_are_unchanged(url: str, by_hand: ByHand) -> None:
    texts = ["A short sentence.", long_text(600, 1), "Another short one."]
    r = post(url, input=texts, chunking=True)
    ours = data(r)
    alone = data(post(url, input=[texts[0], texts[2]]))
    assert_parity(ours[[0, 2]], alone, 0.99999)
    assert_parity(ours[1:2], by_hand.embed(texts[1], WIDTH // 8)[None], 0.9999)
    short_tokens = post(url, input=[texts[0], texts[2]]).json()["usage"]["prompt_tokens"]
    rows = by_hand.chunks(texts[1], WIDTH // 8)
    assert r.json()["usage"]["chunks"] == len(rows) + 2
    assert r.json()["usage"]["prompt_tokens"] == short_tokens + sum(map(len, rows))


def test_without_chunking_long_inputs_stay_400_and_usage_unchanged(url: str) -> None:
    r = post(url, input=[long_text(600)])
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert "chunks" not in post(url, input="short").json()["usage"]
    assert "chunks" in post(url, input="short", chunking=True).json()["usage"]


@pytest.mark.parametrize("body, param", [
    ({"input": ["x y z"], "chunking": True, "chunk_overlap": WIDTH}, "chunk_overlap"),
    ({"input": ["x y z"], "chunking": True, "chunk_overlap": -1}, "chunk_overlap"),
    ({"input": ["x y z"], "chunking": True, "truncate": True}, "chunking"),
    ({"input": [[101, 2000, 102]], "chunking": True}, "chunking"),
    ({"input": ["x"], "chunking": "yes please"}, "chunking"),
])
def test_bad_chunking_requests_are_400(url: str, body: dict[str, Any], param: str) -> None:
    r = post(url, **body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert post(url, input="still healthy").status_code == 200


class Recording:
    """The real backend, recording each call's (rows, padded length)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.limits = inner, inner.name, inner.limits
        self.calls: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        with self.lock:
            self.calls.append(feeds["input_ids"].shape)
        return self.inner.embed(feeds)

    def close(self) -> None:
        self.inner.close()


def test_server_default_chunks_within_the_token_budget(minilm_artifact: Path,
                                                       by_hand: ByHand) -> None:
    """--chunk-long-inputs: requests that do not say are chunked (unless they truncate);
    the chunks are rows of the ordinary batches, each within --max-batch-tokens."""
    config = server_config(minilm_artifact, BatchFlags(max_batch_tokens=600),
                           runtime={"chunk_long_inputs": True})
    opened = Artifact.open(minilm_artifact)
    backend = Recording(load_backend(opened, config.runtime, "text"))
    texts = [long_text(500 + 150 * i, seed=i) for i in range(4)]
    with serve(config, Embedder(opened, config.runtime, {"text": backend})) as (url, _):
        backend.calls.clear()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda t: post(url, input=[t]), texts))
        truncated = post(url, input=[texts[0]], truncate=True)
    chunks = [by_hand.chunks(t, WIDTH // 8) for t in texts]
    assert sum(rows for rows, _ in backend.calls[:-1]) == sum(map(len, chunks))
    assert all(rows * length <= 600 for rows, length in backend.calls)
    for r, text in zip(answers, texts):
        assert_parity(data(r), by_hand.embed(text, WIDTH // 8)[None], 0.9999)
    assert truncated.status_code == 200 and "chunks" not in truncated.json()["usage"]
    assert truncated.json()["usage"]["prompt_tokens"] == MAX_LEN


def test_decoder_chunks_end_with_eos_and_pool_as_by_hand(tmp_path_factory: pytest.TempPathFactory
                                                         ) -> None:
    """A last-token decoder (tiny Qwen3-Embedding, 64 tokens): each chunk ends with its
    <|endoftext|>, as the tokenizer ends a whole text, and pools as by hand."""
    from devtools.checkpoints.tiny_decoders import CORPUS, st_model, tiny_decoder
    from tests.helpers import build_artifact

    root = tmp_path_factory.mktemp("qwen3_chunks")
    checkpoint = tiny_decoder("qwen3", root / "ckpt")
    artifact = build_artifact(checkpoint, root / "artifact")
    model = st_model("qwen3", checkpoint)
    by_hand = ByHand(checkpoint, model, [], [model.tokenizer.convert_tokens_to_ids(
        "<|endoftext|>")], width=63)
    texts = [" ".join(CORPUS[:4]), " ".join(CORPUS[2:9])]
    with serve(server_config(artifact)) as (url, _):
        r = post(url, input=texts, chunking=True, chunk_overlap=10)
    rows = [by_hand.chunks(t, 10) for t in texts]
    assert all(len(c) >= 2 for c in rows)
    assert r.json()["usage"]["chunks"] == sum(map(len, rows))
    assert r.json()["usage"]["prompt_tokens"] == sum(len(x) for c in rows for x in c)
    assert_parity(data(r), np.stack([by_hand.embed(t, 10) for t in texts]), 0.9999)


def test_chunks_count_against_the_queue(minilm_artifact: Path, by_hand: ByHand) -> None:
    """Every chunk is a queued row: a text of more chunks than --max-queue takes is 429."""
    text = long_text(1200, 3)
    assert len(by_hand.chunks(text, WIDTH // 8)) > 4
    with serve(server_config(minilm_artifact, BatchFlags(max_queue_rows=4))) as (url, _):
        r = post(url, input=[text], chunking=True)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "overloaded" and "Retry-After" in r.headers
        assert post(url, input=[long_text(300, 4)], chunking=True).json()["usage"]["chunks"] == 2
