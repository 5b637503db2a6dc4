"""(c): the real server (`python -m server.launch_server`) under closed-loop load.

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams: it shares the two
cores with the server, so it must cost as little CPU as possible (httpx costs several times
more per request). Request bodies are encoded before the clock starts; responses are decoded
after it stops, to check the vectors.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import orjson

from bench.local import chunks
from bench.stats import Run, min_cosine
from devtools.helpers import decode_embeddings


class HttpError(RuntimeError):
    pass


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    host: str

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def post(self, path: str, body: bytes) -> bytes:
        if self.reader.at_eof():  # the server closed an idle keep-alive connection
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.writer.get_extra_info("peername")[1])
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        payload = await self.reader.readexactly(length)
        if status != 200:
            raise HttpError(f"HTTP {status}: {payload[:300]!r}")
        return payload

    def close(self) -> None:
        self.writer.close()


async def closed_loop(host: str, port: int, bodies: Sequence[bytes], concurrency: int,
                      path: str = "/v1/embeddings", warm: bytes | None = None
                      ) -> tuple[float, list[float], list[bytes]]:
    """`concurrency` clients each send their next request to `path` as soon as the last one
    returns."""
    conns = [await Connection.open(host, port) for _ in range(concurrency)]
    # Warm every connection (and the server) outside the clock with a short request.
    warm = warm or orjson.dumps({"model": "bench", "input": "warm-up"})
    await asyncio.gather(*(conn.post(path, warm) for conn in conns))
    latencies = [0.0] * len(bodies)
    responses: list[bytes] = [b""] * len(bodies)
    cursor = iter(range(len(bodies)))

    async def client(conn: Connection) -> None:
        for i in cursor:  # the shared iterator hands each request to one client
            start = time.perf_counter()
            responses[i] = await conn.post(path, bodies[i])
            latencies[i] = time.perf_counter() - start

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    seconds = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return seconds, latencies, responses


def load_run(url: str, precision: str, sentences: Sequence[str], size: int,
             concurrency: int, requests: int | None,
             count_tokens: Callable[[Sequence[str]], int]) -> tuple[Run, list[bytes]]:
    """`requests` requests of `size` sentences (None: the whole corpus) at `concurrency`:
    their Run and the raw responses."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    calls = chunks(sentences, size)[:requests]
    bodies = [orjson.dumps({"model": "bench", "input": c[0] if size == 1 else c})
              for c in calls]
    seconds, latencies, responses = asyncio.run(
        closed_loop(host, int(port), bodies, concurrency))
    texts = [t for c in calls for t in c]
    run = Run("c", f"HTTP server, {size} sentence{'s' * (size > 1)} per request, "
              f"concurrency {concurrency}", precision, size, concurrency, len(texts),
              count_tokens(texts), seconds, tuple(latencies))
    return run, responses


def server_runs(url: str, precision: str, sentences: Sequence[str], reference: np.ndarray,
                count_tokens: Callable[[Sequence[str]], int], plan: Sequence[tuple[int, int, int]],
                ) -> list[Run]:
    """One Run per (request size, concurrency, requests) in `plan`, vectors checked."""
    runs = []
    for size, concurrency, requests in plan:
        run, responses = load_run(url, precision, sentences, size, concurrency, requests,
                                  count_tokens)
        vectors = np.concatenate([decode_embeddings(orjson.loads(r)) for r in responses])
        runs.append(replace(run, min_cosine=min_cosine(vectors, reference[:run.sentences])))
    return runs
