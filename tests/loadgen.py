"""A tiny keep-alive HTTP/1.1 load generator on asyncio streams.

httpx spends milliseconds of CPU per request; on CI's 2 cores that would measure the client,
not the server. Requests are pre-encoded bytes and responses are read by Content-Length.
"""

from __future__ import annotations

import asyncio
from typing import Sequence


def post_bytes(host: str, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(ln.split(":", 1)[1]) for ln in lines[1:]
                  if ln.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def hammer(url: str, bodies: Sequence[bytes], concurrency: int = 32,
                 path: str = "/v1/embeddings") -> list[tuple[int, bytes]]:
    """POST every body over `concurrency` keep-alive connections; answers in input order."""
    host, port = url.removeprefix("http://").split(":")
    requests = [post_bytes(host, path, b) for b in bodies]
    out: list[tuple[int, bytes]] = [(0, b"")] * len(bodies)
    next_index = iter(range(len(bodies)))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in next_index:  # shared iterator: each index is taken once
                writer.write(requests[i])
                out[i] = await _read_response(reader)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def run(url: str, bodies: Sequence[bytes], concurrency: int = 32) -> list[tuple[int, bytes]]:
    return asyncio.run(hammer(url, bodies, concurrency))
