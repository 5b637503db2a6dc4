"""Session fixtures: the real default model built once, and one real server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import build_artifact, minilm_checkpoint, running_server


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    return minilm_checkpoint()


@pytest.fixture(scope="session")
def minilm_artifact(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    return build_artifact(minilm_path, tmp_path_factory.mktemp("artifacts") / "minilm")


@pytest.fixture(scope="session")
def minilm_server(minilm_artifact: Path) -> Iterator[str]:
    """A server on the built artifact, as `make serve` runs it; yields its base URL."""
    with running_server(minilm_artifact) as url:
        yield url
