"""Several batches in flight (a GPU backend's streams), texts tokenised together off the
loop, rows of many requests mixed in length-sorted batches: every answer is still its own
input's. The backend's vectors say what it was fed (real tokens, sum of ids), and each
call sleeps a different time, so batches finish out of order."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path
from typing import Mapping

import httpx
import numpy as np

from runtime.artifact import Artifact
from runtime.backends.base import BackendLimits
from runtime.pipeline.embedder import Embedder
from runtime.pipeline.limits import BatchFlags
from runtime.tokenizer import TextTokenizer
from tests.inprocess import serve, server_config


class SignatureBackend:
    """Vectors that hold each row's real tokens and the sum of its ids."""

    name = "signature"

    def __init__(self, dims: int, in_flight: int):
        self.dims = dims
        self.limits = BackendLimits(256, 256, concurrency=in_flight, call_cost_tokens=500)
        self.rng = random.Random(3)
        self.lock = threading.Lock()
        self.running = self.most_at_once = 0

    def embed(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            pause = self.rng.uniform(0.0, 0.01)
        time.sleep(pause)
        with self.lock:
            self.running -= 1
        out = np.zeros((ids.shape[0], self.dims), dtype=np.float32)
        out[:, 0] = mask.sum(axis=1)
        out[:, 1] = (ids * mask).sum(axis=1)
        return out

    def close(self) -> None:
        pass


def test_every_answer_is_its_own_input_with_batches_in_flight(minilm_artifact: Path) -> None:
    artifact = Artifact.open(minilm_artifact)
    backend = SignatureBackend(artifact.spec.dims, in_flight=3)
    config = server_config(minilm_artifact, BatchFlags(max_wait_ms=2))
    embedder = Embedder(artifact, config.runtime, {"text": backend})
    tokenizer = TextTokenizer(artifact.tokenizer_path, artifact.spec.max_len)
    rng = random.Random(11)
    words = "the a cat sat on mat of river bank money quickly sleeping tokens".split()
    requests = [[" ".join(rng.choices(words, k=rng.randint(1, 40)))
                 for _ in range(rng.choice([1, 1, 3, 17, 64]))] for _ in range(120)]
    id_requests = [[[rng.randint(1000, 9000) for _ in range(rng.randint(1, 50))]
                    for _ in range(rng.randint(1, 9))] for _ in range(30)]

    async def post(client: httpx.AsyncClient, body: object) -> list[list[float]]:
        response = await client.post("/v1/embeddings", json={"input": body, "model": "m"})
        assert response.status_code == 200, response.text
        return [d["embedding"][:2] for d in response.json()["data"]]

    async def load(url: str) -> list[list[list[float]]]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(*(post(client, b) for b in requests + id_requests))

    with serve(config, embedder) as (url, _):
        answers = asyncio.run(load(url))
    sent = [tokenizer.encode(texts, False) for texts in requests] + id_requests
    for rows, answer in zip(sent, answers):
        assert answer == [[len(r), sum(r)] for r in rows]
    assert backend.most_at_once >= 2  # batches did overlap
    assert embedder.batcher.batches_run < sum(map(len, sent))  # and rows did share them
