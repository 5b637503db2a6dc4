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
from tests.helpers import assert_parity, cosine_rows
from tests.inprocess import embedding_rows as data, post_embeddings as post, serve, server_config

WORDS = ("the council said on Tuesday that rainfall across the state was well below the "
         "average for the season and farmers expect a smaller wheat harvest while prices of "
         "bread and flour rose in the cities").split()
MAX_LEN, WIDTH = 256, 254  # all-MiniLM-L6-v2: 256 tokens, 2 of them [CLS] and [SEP]


def long_text(words: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), words))


class ByHand:
    """The reference: sentence-transformers' model run on chunks made by hand."""

    def __init__(self, checkpoint: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(checkpoint), device="cpu")
        self.tok = self.model.tokenizer

    def chunks(self, text: str, overlap: int) -> list[list[int]]:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        out, start = [], 0
        while True:
            out.append([self.tok.cls_token_id, *ids[start:start + WIDTH], self.tok.sep_token_id])
            if start + WIDTH >= len(ids):
                return out
            start += WIDTH - overlap

    def encode(self, rows: list[list[int]]) -> np.ndarray:
        import torch

        vectors = []
        for row in rows:  # one at a time: no padding in the reference
            ids = torch.tensor([row])
            features = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                        "token_type_ids": torch.zeros_like(ids)}
            with torch.inference_mode():
                vectors.append(self.model(features)["sentence_embedding"][0].numpy())
        return np.stack(vectors)

    def embed(self, text: str, overlap: int, weighted: bool = True) -> np.ndarray:
        rows = self.chunks(text, overlap)
        vectors = self.encode(rows)
        weights = np.array([len(r) for r in rows] if weighted else [1] * len(rows), float)
        pooled = (vectors * weights[:, None]).sum(0) / weights.sum()
        return pooled / np.linalg.norm(pooled)


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
