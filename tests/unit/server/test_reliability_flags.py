"""The server's flags reach the frozen configs with the documented defaults; each flag's
environment variables (server/flags.py) stand in for it, and a flag beats its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.artifact import Artifact
from server.config import ServerConfig
from server.flags import environment
from server.launch_server import build_config, parser
from tests.unit.runtime.test_artifact_cache import write_manifest

ENV = tuple(sorted(environment()))  # every variable the flags read


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def artifact(tmp_path: Path) -> Artifact:
    (tmp_path / "ckpt").mkdir()
    return Artifact.open(write_manifest(tmp_path / "art", tmp_path / "ckpt"))


def config_for(artifact: Artifact, *flags: str) -> ServerConfig:
    return build_config(parser().parse_args(["--model-path", "m", *flags]), artifact)


def test_defaults(artifact: Artifact) -> None:
    cfg = config_for(artifact)
    assert cfg.max_inputs_per_request == 2048
    assert cfg.max_request_bytes == 16 * 1024 * 1024
    assert cfg.runtime.max_request_tokens == 300_000
    assert cfg.runtime.batch.max_queue_wait_ms == 0
    assert cfg.api_key is None and cfg.drain_timeout_s == 30
    media = cfg.runtime.media
    assert (media.max_bytes, media.max_pixels) == (20 * 1024 * 1024, 32_000_000)
    # The opened artifact is handed on: its manifest is not read again.
    assert cfg.artifact is artifact and str(Path(cfg.artifact)) == str(artifact.path)


def test_flags_and_env(monkeypatch: pytest.MonkeyPatch, artifact: Artifact) -> None:
    monkeypatch.setenv("TRT_EMBED_API_KEY", "from-env")
    assert config_for(artifact).api_key == "from-env"
    cfg = config_for(artifact, "--api-key", "key-XYZZY", "--max-request-bytes", "10",
                     "--max-queue-wait-ms", "5", "--max-tokens-per-request", "7",
                     "--drain-timeout", "3", "--max-image-bytes", "1", "--max-image-pixels", "2")
    assert (cfg.api_key, cfg.max_request_bytes, cfg.runtime.batch.max_queue_wait_ms) == ("key-XYZZY", 10, 5)
    assert (cfg.runtime.max_request_tokens, cfg.drain_timeout_s) == (7, 3)
    assert (cfg.runtime.media.max_bytes, cfg.runtime.media.max_pixels) == (1, 2)
    assert "XYZZY" not in repr(cfg)  # the key never lands in a log line


def test_container_variables_are_the_flags_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MODEL": "BAAI/bge-small-en-v1.5", "HOST": "0.0.0.0", "PORT": "8000",
           "BACKEND": "onnxruntime", "PRECISION": "fp16", "SERVED_MODEL_NAME": "bge",
           "ENGINE_CACHE": "/cache", "BUILD_ONLY": "1", "FORCE_BUILD": "yes",
           "BUILDER_PYTHON": "/opt/builder/bin/python", "COMPUTE_CAPABILITY": "8.9, 12.0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = parser().parse_args([])  # --model-path is no longer required: MODEL gives it
    assert (args.model_path, args.host, args.port, args.backend, args.precision) == (
        "BAAI/bge-small-en-v1.5", "0.0.0.0", 8000, "onnxruntime", "fp16")
    assert (args.served_model_name, args.artifact_cache) == ("bge", Path("/cache"))
    assert args.build_only and args.force_build
    assert args.builder_python == "/opt/builder/bin/python"
    assert args.compute_capability == ["8.9", "12.0"]
    assert parser().parse_args(["--compute-capability", "8.6"]).compute_capability == ["8.6"]
    # TRT_EMBED_CACHE is read first; an explicit flag beats both variables.
    monkeypatch.setenv("TRT_EMBED_CACHE", "/first")
    assert parser().parse_args([]).artifact_cache == Path("/first")
    given = parser().parse_args(["--port", "1", "--artifact-cache", "/x", "--model-path", "m"])
    assert (given.port, given.artifact_cache, given.model_path) == (1, Path("/x"), "m")
    monkeypatch.setenv("FORCE_BUILD", "0")
    assert not parser().parse_args([]).force_build


def test_without_model_the_flag_is_required(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args([])
    assert "--model-path" in capsys.readouterr().err
    assert "(env MODEL)" in parser().format_help()


def test_batch_flags_keep_what_was_not_given(artifact: Artifact) -> None:
    """runtime.pipeline.limits.resolve_batch needs to know which flags the user set."""
    flags = config_for(artifact).runtime.batch
    assert (flags.max_batch_size, flags.max_batch_tokens, flags.concurrency) == (None, None, None)
    given = config_for(artifact, "--max-batch-size", "8", "--max-batch-tokens", "512",
                       "--batches-in-flight", "3", "--max-wait-ms", "2").runtime.batch
    assert (given.max_batch_size, given.max_batch_tokens, given.concurrency,
            given.max_wait_ms) == (8, 512, 3, 2.0)
