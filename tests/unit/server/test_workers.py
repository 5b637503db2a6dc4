"""How many server processes --workers 0 (auto) starts: pure."""

from __future__ import annotations

import pytest

from server.workers import MAX_AUTO_WORKERS, auto_workers

SMALL, BIG, LIMIT = 400 << 20, 15 << 30, 2 << 30


@pytest.mark.parametrize("gpu, size, cores, want", [
    (False, SMALL, 64, 1),  # CPU backend: the cores run the model, not more event loops
    (True, BIG, 64, 1),  # a 7B model once per worker would not fit
    (True, SMALL, 2, 1),
    (True, SMALL, 8, 2),
    (True, SMALL, 16, 4),
    (True, SMALL, 128, MAX_AUTO_WORKERS),
])
def test_auto_workers(gpu: bool, size: int, cores: int, want: int) -> None:
    assert auto_workers(gpu, size, cores, LIMIT) == want
