"""server.lifecycle.unless_disconnected: work runs in the caller's task, a watcher cancels it."""

from __future__ import annotations

import asyncio

import pytest

from server.guards import Message, Receive
from server.lifecycle import unless_disconnected


def channel() -> tuple[asyncio.Event, Receive]:
    """An ASGI receive that returns http.disconnect once `leave` is set."""
    leave = asyncio.Event()

    async def receive() -> Message:
        await leave.wait()
        return {"type": "http.disconnect"}

    return leave, receive


async def test_finished_work_returns_its_result() -> None:
    _, receive = channel()

    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await unless_disconnected(receive, work()) == (True, 7)
    await asyncio.sleep(0)  # the watcher's cancellation must not reach this task later


async def test_a_client_that_leaves_cancels_the_work() -> None:
    leave, receive = channel()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    async def hang_up() -> None:
        await started.wait()
        leave.set()

    hanger = asyncio.create_task(hang_up())
    assert await unless_disconnected(receive, work()) == (False, None)
    assert cancelled.is_set()
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0
    await hanger


async def test_errors_of_the_work_propagate() -> None:
    _, receive = channel()

    async def work() -> int:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await unless_disconnected(receive, work())


async def test_a_cancel_from_outside_is_not_swallowed() -> None:
    _, receive = channel()
    entered = asyncio.Event()

    async def work() -> int:
        entered.set()
        await asyncio.Event().wait()
        return 1

    task = asyncio.create_task(unless_disconnected(receive, work()))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_quick_work_starts_no_watcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request done within WATCH_AFTER_S costs no watcher task; a slower one gets one."""
    import server.lifecycle as lifecycle

    started: list[int] = []
    real = lifecycle._until_disconnect

    async def counted(receive: Receive) -> None:
        started.append(1)
        await real(receive)

    monkeypatch.setattr(lifecycle, "_until_disconnect", counted)
    _, receive = channel()

    async def quick() -> int:
        return 1

    async def slow() -> int:
        await asyncio.sleep(lifecycle.WATCH_AFTER_S * 4)
        return 2

    assert await unless_disconnected(receive, quick()) == (True, 1)
    await asyncio.sleep(lifecycle.WATCH_AFTER_S * 2)
    assert started == []
    assert await unless_disconnected(receive, slow()) == (True, 2)
    assert started == [1]
