"""Startup, readiness and client disconnects: the parts of serving that are about time.

Startup failures (corrupt graph or plan, missing tokenizer, unknown family, unusable
manifest) must end the process within seconds with one clear log line, so the artifact
is loaded before the HTTP server starts; the warm-up forward pass then runs in the
background and readiness (`/ready`) turns 200 when it has succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Awaitable, Callable, Sequence, TypeVar

from runtime.pipeline.embedder import Embedder
from runtime.errors import ApplianceError, ArtifactError
from server.config import ServerConfig
from server.guards import Receive

if TYPE_CHECKING:
    import uvicorn

    from server.models import ServedModel

log = logging.getLogger("server")
T = TypeVar("T")


def configure_logging(log_level: str) -> None:
    """The launcher's and every worker process's log format (server/workers.py)."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def one_line(exc: BaseException) -> str:
    """Library errors (ONNX Runtime's above all) span lines; a log line must not."""
    return " ".join(str(exc).split())


def load_embedders(config: ServerConfig) -> list[Embedder]:
    """Every served model's artifact opened once, in launch order; an unknown family
    (runtime/adapters/registry.py), a bad manifest, graph or tokenizer is an ArtifactError
    before any serving starts, naming the model when several are served (no appliance
    starts with part of its models)."""
    loaded: list[Embedder] = []
    for model in config.models:
        try:
            loaded.append(Embedder.load(model.artifact, model.runtime))
        except ApplianceError as exc:  # the start fails; the process ends, loaded or not
            if len(config.models) == 1:
                raise
            raise ArtifactError(f"model {model.served_model_name!r} ({model.model_path}): "
                                f"{one_line(exc)}") from exc
    return loaded


def load_or_exit(config: ServerConfig) -> list[Embedder]:
    """The embedders, or exit status 1 after one log line saying what is wrong."""
    try:
        return load_embedders(config)
    except ApplianceError as exc:
        log.error("startup failed: %s", one_line(exc))
        raise SystemExit(1) from exc


@dataclass
class Readiness:
    ready: bool = False
    error: str | None = None  # why warm-up failed; readiness then stays 503
    draining: bool = False  # SIGTERM came: readiness says 503 while in-flight work finishes


def draining_server(config: "uvicorn.Config", readiness: Readiness,
                    delay_s: float) -> "uvicorn.Server":
    """uvicorn's server, whose SIGTERM/SIGINT first flips /ready to 503, so that a load
    balancer or kubelet probing it stops sending before the listener closes `delay_s` later
    (requests are served meanwhile); then uvicorn's own drain runs."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if readiness.draining:  # a second signal: no more waiting
                super().handle_exit(sig, frame)
                return
            readiness.draining = True
            log.info("signal %d: /ready now 503; closing the listener in %.1f s, then "
                     "draining in-flight requests", sig, delay_s)
            # Called from the signal handler: a timer thread sets uvicorn's exit flag later.
            timer = threading.Timer(delay_s, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()

    return DrainingServer(config)


async def warm_up(models: Sequence["ServedModel"], readiness: Readiness,
                  on_failure: Callable[[], None]) -> None:
    """A real forward pass through each model's batcher and backend, the models one after
    another (each warm-up has the cores to itself); readiness turns 200 when every model's
    has run, and one failure fails the start, naming the model when several are served."""
    for model in models:
        try:
            await model.embedder.start()
        except Exception as exc:  # any failure here means the backend cannot serve
            named = f"model {model.name!r}: " if len(models) > 1 else ""
            readiness.error = named + one_line(exc)
            log.error("startup failed: warm-up forward pass: %s", readiness.error)
            on_failure()
            return
    readiness.ready = True
    backends = [m.embedder.backend.name for m in models]
    log.info("ready: warm-up forward pass done on %s", backends[0] if len(models) == 1 else
             ", ".join(f"{m.name} ({b})" for m, b in zip(models, backends)))


async def _until_disconnect(receive: Receive) -> None:
    # The body has been read, so the next ASGI message is http.disconnect: the client left,
    # or the answer went out (then this watcher is already cancelled).
    while (await receive())["type"] != "http.disconnect":
        pass


# A request still running after this long gets a watcher for its client leaving: most
# finish sooner, and a task per request cost ~12% of the loop's time per one-sentence
# request (bench/serving.py, free engine). A client that leaves sooner costs at most the
# rows already in a batch by then.
WATCH_AFTER_S = 0.005


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> tuple[bool, T | None]:
    """Await `work` while watching the connection: (True, result), or (False, None) if the
    client hung up first - then `work` is cancelled, which drops its queued inputs.

    `work` runs in the caller's task (a task of its own and asyncio.wait cost event-loop
    time on every request); a watcher, started once the work has run WATCH_AFTER_S,
    cancels the caller when the client leaves."""
    caller = asyncio.current_task()
    assert caller is not None
    watching: list[asyncio.Future] = []
    waiting, left = True, False

    def on_watcher_done(w: asyncio.Future) -> None:
        nonlocal left
        # Only while `work` is awaited: afterwards a late cancel would hit the response.
        if waiting and not w.cancelled() and w.exception() is None:
            left = True
            caller.cancel()

    def watch() -> None:
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(on_watcher_done)
        watching.append(watcher)

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, watch)
    try:
        return True, await work
    except asyncio.CancelledError:
        if not left:  # cancelled from outside (shutdown): not ours to swallow
            raise
        caller.uncancel()
        return False, None
    finally:
        waiting = False
        timer.cancel()
        for watcher in watching:
            watcher.cancel()
