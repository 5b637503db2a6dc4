"""The command lines share their common flags from runtime/settings.py: every one of them
that has a shared flag gives it the same default, choices and environment variables."""

from __future__ import annotations

import argparse
from typing import Callable

import pytest

from runtime import settings

SHARED = [settings.BACKEND, settings.PRECISION, settings.ARTIFACT_CACHE,
          settings.MAX_BATCH_SIZE, settings.MAX_BATCH_TOKENS, settings.TRT_CONTEXTS,
          settings.BUILDER_PYTHON, settings.CHUNK_LONG_INPUTS, settings.CHUNK_OVERLAP]


def parsers() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from builder.__main__ import parser as builder
    from runtime.artifact.cache import parser as cache
    from runtime.bulk.__main__ import parser as bulk
    from server.flags import parser as server

    return {"server": server, "bulk": bulk, "builder": builder, "artifact_cache": cache}


def action(parser: argparse.ArgumentParser, option: str) -> argparse.Action | None:
    return next((a for a in parser._actions if option in a.option_strings), None)


@pytest.mark.parametrize("flag", SHARED, ids=lambda f: f.names[0])
def test_a_shared_flag_is_the_same_on_every_command_line(
        flag: settings.Flag, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in flag.env:  # `make test` exports TRT_EMBED_CACHE: the defaults, unset
        monkeypatch.delenv(variable, raising=False)
    found_in = {name: action(make(), flag.names[0]) for name, make in parsers().items()}
    having = {name: a for name, a in found_in.items() if a is not None}
    assert len(having) >= 2, f"{flag.names[0]} is shared by fewer than two commands"
    for name, found in having.items():
        assert found.default == flag.kwargs["default"], (name, found.default)
        assert found.choices == flag.kwargs.get("choices"), name
        assert found.type == flag.kwargs.get("type"), name


@pytest.mark.parametrize("flag", [f for f in SHARED if f.env], ids=lambda f: f.names[0])
def test_a_shared_flags_environment_reaches_every_command_line(
        flag: settings.Flag, monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"--backend": "onnxruntime", "--precision": "fp16"}.get(flag.names[0], "/tmp/x")
    for variable in flag.env:
        for other in flag.env:
            monkeypatch.delenv(other, raising=False)
        monkeypatch.setenv(variable, value)
        for name, make in parsers().items():
            found = action(make(), flag.names[0])
            if found is not None:
                want = flag.kwargs.get("type", str)(value)
                assert found.default == want, (name, variable, found.default)


def test_the_image_and_the_commands_read_the_same_cache_variable() -> None:
    """The appliance image sets ENGINE_CACHE; every command reads it (the bulk command in the
    container used to build into ~/.cache instead)."""
    assert "ENGINE_CACHE" in settings.ARTIFACT_CACHE.env
    assert "TRT_EMBED_CACHE" in settings.ARTIFACT_CACHE.env
