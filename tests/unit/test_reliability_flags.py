"""The reliability flags reach the frozen configs with the documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.launch_server import build_config, parser


def config_for(*flags: str):  # type: ignore[no-untyped-def]
    return build_config(parser().parse_args(["--model-path", "m", *flags]), Path("a"))


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRT_EMBED_API_KEY", raising=False)
    cfg = config_for()
    assert cfg.max_inputs_per_request == 2048
    assert cfg.max_request_bytes == 16 * 1024 * 1024
    assert cfg.runtime.max_request_tokens == 300_000
    assert cfg.runtime.batch.max_queue_wait_ms == 0
    assert cfg.api_key is None and cfg.drain_timeout_s == 30
    media = cfg.runtime.media
    assert (media.max_bytes, media.max_pixels) == (20 * 1024 * 1024, 32_000_000)


def test_flags_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRT_EMBED_API_KEY", "from-env")
    assert config_for().api_key == "from-env"
    cfg = config_for("--api-key", "key-XYZZY", "--max-request-bytes", "10", "--max-queue-wait-ms", "5",
                     "--max-tokens-per-request", "7", "--drain-timeout", "3",
                     "--max-image-bytes", "1", "--max-image-pixels", "2")
    assert (cfg.api_key, cfg.max_request_bytes, cfg.runtime.batch.max_queue_wait_ms) == ("key-XYZZY", 10, 5)
    assert (cfg.runtime.max_request_tokens, cfg.drain_timeout_s) == (7, 3)
    assert (cfg.runtime.media.max_bytes, cfg.runtime.media.max_pixels) == (1, 2)
    assert "XYZZY" not in repr(cfg)  # the key never lands in a log line
