"""Several models from one command line (server/models_file.py, launch_server.prepare): a
repeated --model-path, a models file and env MODELS become one config per model, with the
per-model flags of each line; mistakes end the start with one line naming the model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.errors import ConfigError
from server.flags import environment
from server.launch_server import parser, prepare, share_cores
from server.models import route_names
from server.models_file import launches
from tests.unit.runtime.test_artifact_cache import write_manifest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in environment():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def arts(tmp_path: Path) -> list[Path]:
    """Two artifacts (manifests over an empty checkpoint: prepare opens, never loads)."""
    (tmp_path / "ckpt").mkdir()
    return [write_manifest(tmp_path / name, tmp_path / "ckpt") for name in ("a", "b")]


def test_one_model_path_is_the_launch_as_before(arts: list[Path]) -> None:
    args = parser().parse_args(["--model-path", str(arts[0]), "--served-model-name", "x"])
    assert launches(args, parser()) == [args]
    config = prepare(args)
    assert config is not None and config.more_models == ()
    assert (config.served_model_name, config.models) == ("x", (config,))


def test_repeated_model_path_pairs_with_names_in_order(arts: list[Path]) -> None:
    args = parser().parse_args(["--model-path", str(arts[0]), "--model-path", str(arts[1]),
                                "--served-model-name", "first", "--served-model-name", "second",
                                "--max-batch-tokens", "300"])
    config = prepare(args)
    assert config is not None
    assert [(c.served_model_name, c.model_path) for c in config.models] == [
        ("first", str(arts[0])), ("second", str(arts[1]))]
    assert {c.runtime.batch.max_batch_tokens for c in config.models} == {300}
    unnamed = prepare(parser().parse_args(["--model-path", str(arts[0]), "--model", str(arts[1])]))
    assert unnamed is not None
    assert [c.served_model_name for c in unnamed.models] == [str(arts[0]), str(arts[1])]
    with pytest.raises(ConfigError, match="2 --model-path but 1 --served-model-name"):
        launches(parser().parse_args(["--model-path", "a", "--model-path", "b",
                                      "--served-model-name", "x"]), parser())


def test_models_file_lines_carry_their_own_flags(arts: list[Path], tmp_path: Path) -> None:
    models = tmp_path / "models.txt"
    models.write_text(f"# name path flags\n\nemb {arts[0]}  # the embedder\n"
                      f"rr '{arts[1]}' --max-batch-tokens 512 --threads 2 --alias rerank "
                      "--alias r2 --rerank-overflow error\n")
    config = prepare(parser().parse_args(["--models-file", str(models),
                                          "--max-batch-tokens", "128"]))
    assert config is not None
    emb, rr = config.models
    assert (emb.served_model_name, emb.aliases, emb.runtime.batch.max_batch_tokens,
            emb.rerank_truncate) == ("emb", (), 128, True)
    assert (rr.served_model_name, rr.aliases, rr.runtime.batch.max_batch_tokens,
            rr.runtime.threads, rr.rerank_truncate) == ("rr", ("rerank", "r2"), 512, 2, False)


def test_env_models_follow_the_command_line_models(arts: list[Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELS", f"second {arts[1]} --precision fp16; third {arts[1]}")
    args = parser().parse_args(["--model-path", str(arts[0])])  # MODELS satisfies the parser
    names = [(m.served_model_name, m.precision) for m in launches(args, parser())]
    assert names == [(None, None), ("second", "fp16"), ("third", None)]
    assert [m.model_path for m in launches(parser().parse_args([]), parser())] == [
        str(arts[1])] * 2


@pytest.mark.parametrize("line, message", [
    ("only-a-name", "a line is NAME PATH"),
    ("x /p --port 1", "unrecognized arguments: --port 1"),
    ("x /p --api-key k", "unrecognized arguments: --api-key k"),
    ("x /p --precision fp64", "invalid choice: 'fp64'"),
    ("x /p --max-batch-tokens many", "invalid int value: 'many'"),
])
def test_a_bad_line_is_one_clear_error(line: str, message: str, tmp_path: Path) -> None:
    models = tmp_path / "models.txt"
    models.write_text(line + "\n")
    with pytest.raises(ConfigError, match=message) as caught:
        launches(parser().parse_args(["--models-file", str(models)]), parser())
    assert line in str(caught.value)


def test_two_models_under_one_name_are_refused(arts: list[Path], tmp_path: Path) -> None:
    models = tmp_path / "models.txt"
    models.write_text(f"a {arts[0]}\nb {arts[1]} --alias a\n")
    with pytest.raises(ConfigError, match="the name 'a' would route to two models"):
        prepare(parser().parse_args(["--models-file", str(models)]))


def test_one_path_served_twice_is_routed_by_name_only(arts: list[Path], tmp_path: Path) -> None:
    """One checkpoint at two precisions: its path names neither; unnamed, they collide."""
    models = tmp_path / "models.txt"
    models.write_text(f"full {arts[0]}\nhalf {arts[0]} --precision fp16 --alias small\n"
                      f"other {arts[1]}\n")
    config = prepare(parser().parse_args(["--models-file", str(models)]))
    assert config is not None
    assert route_names(config.models) == [("full",), ("half", "small"),
                                          ("other", str(arts[1]))]
    with pytest.raises(ConfigError, match=f"the name '{arts[0]}' would route to two models"):
        prepare(parser().parse_args(["--model-path", str(arts[0]), "--model", str(arts[0])]))


def test_a_failing_model_is_named(tmp_path: Path, arts: list[Path]) -> None:
    models = tmp_path / "models.txt"
    models.write_text(f"good {arts[0]}\nbad {arts[1]} --chat-template gme-qwen2-vl "
                      "--context-length 0\n")
    with pytest.raises(ConfigError, match="^model 'bad': "):
        prepare(parser().parse_args(["--models-file", str(models)]))


def test_without_any_model_the_parser_says_what_is_required(
        capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args([])
    assert "--models-file" in capsys.readouterr().err


def test_cpu_cores_are_shared_between_models(arts: list[Path]) -> None:
    """ONNX Runtime's adaptive threading plans for `cores`: each of two models gets half,
    at least one; a lone model keeps every core (0), and an explicit --threads is kept."""
    one = prepare(parser().parse_args(["--model-path", str(arts[0])]))
    assert one is not None and one.runtime.cores == 0
    assert share_cores([one, one], cores=8)[0].runtime.cores == 4
    assert [c.runtime.cores for c in share_cores([one] * 3, cores=2)] == [1, 1, 1]
    assert share_cores([one], cores=8) == [one]
    pinned = prepare(parser().parse_args(["--model-path", str(arts[0]), "--threads", "3"]))
    assert pinned is not None and share_cores([pinned, one], cores=8)[0] == pinned
    two = prepare(parser().parse_args(["--model-path", str(arts[0]), "--model-path",
                                       str(arts[1])]))
    assert two is not None
    assert {c.runtime.cores for c in two.models} == {max(1, len(os.sched_getaffinity(0)) // 2)}
