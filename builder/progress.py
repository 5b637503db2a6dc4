"""Build progress on the terminal: one line per step, with how long it took."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


def say(message: str) -> None:
    print(f"[build] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(message: str) -> Iterator[None]:
    say(f"{message} ...")
    start = time.perf_counter()
    yield
    say(f"{message}: done in {time.perf_counter() - start:.1f}s")
