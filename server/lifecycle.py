"""Startup, readiness and client disconnects: the parts of serving that are about time.

Startup failures (corrupt graph or plan, missing tokenizer, unknown family, unusable
manifest) must end the process within seconds with one clear log line, so the artifact
is loaded before the HTTP server starts; the warm-up forward pass then runs in the
background and readiness (`/ready`) turns 200 when it has succeeded.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from fastapi import Request

from models.registry import family_by_name
from models.spec import UnsupportedModelError
from runtime.embedder import Embedder
from runtime.errors import ApplianceError, ArtifactError
from runtime.manifest import Manifest
from server.config import ServerConfig

log = logging.getLogger("server")
T = TypeVar("T")


def one_line(exc: BaseException) -> str:
    """Library errors (ONNX Runtime's above all) span lines; a log line must not."""
    return " ".join(str(exc).split())


def load_embedder(config: ServerConfig) -> Embedder:
    manifest = Manifest.load(config.artifact)
    try:
        family_by_name(manifest.spec.family)
    except UnsupportedModelError as exc:
        raise ArtifactError(f"{config.artifact}: {exc}") from exc
    return Embedder.load(config.artifact, config.runtime)


def load_or_exit(config: ServerConfig) -> Embedder:
    """The embedder, or exit status 1 after one log line saying what is wrong."""
    try:
        return load_embedder(config)
    except ApplianceError as exc:
        log.error("startup failed: %s", one_line(exc))
        raise SystemExit(1) from exc


@dataclass
class Readiness:
    ready: bool = False
    error: str | None = None  # why warm-up failed; readiness then stays 503


async def warm_up(emb: Embedder, readiness: Readiness, on_failure: Callable[[], None]) -> None:
    """A real forward pass through the batcher and backend; readiness follows its outcome."""
    try:
        await emb.start()
    except Exception as exc:  # any failure here means the backend cannot serve
        readiness.error = one_line(exc)
        log.error("startup failed: warm-up forward pass: %s", readiness.error)
        on_failure()
        return
    readiness.ready = True
    log.info("ready: warm-up forward pass done on %s", emb.backend.name)


async def _until_disconnect(request: Request) -> None:
    # The body has been read, so the next ASGI message is http.disconnect: the client left,
    # or the answer went out (then this watcher is already cancelled).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> tuple[bool, T | None]:
    """Run `work` while watching the connection: (True, result), or (False, None) if the
    client hung up first - then `work` is cancelled, which drops its queued inputs."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_until_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done and watcher.exception() is not None:  # not a disconnect
            await asyncio.wait({task})
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.done():  # the client left first: cancelled above, let it unwind
        await asyncio.gather(task, return_exceptions=True)
        return False, None
    return True, task.result()
