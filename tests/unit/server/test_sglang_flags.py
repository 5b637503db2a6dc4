"""Every SGLang 0.5.23 launch flag parses; those with meaning here act."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from bench.sglang_flags import sglang_flags
from server import flags
from server.launch_server import main, parser, precision
from tests.helpers import ROOT

SGLANG = json.loads(flags.SGLANG_FLAGS.read_text())
VERSION = "0.5.23"
# One fixed wheel whatever the test machine is: the flag sources are pure Python.
WHEEL = ["--platform", "manylinux_2_34_x86_64", "--python-version", "3.11",
         "--only-binary=:all:"]
CACHE = Path(os.environ.get("TRT_EMBED_TEST_CACHE") or ROOT / ".cache" / "tests")
# What the generator reads (bench/sglang_flags.py), extracted from the wheel.
MEMBERS = ("sglang/srt/arg_groups/", "sglang/srt/server_args.py")


def index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").rstrip("/") + "/"


def index_reachable() -> bool:
    try:
        with urllib.request.urlopen(index_url() + "sglang/", timeout=20):
            return True
    except (urllib.error.URLError, OSError):
        return False


def fetch_sglang(cache: Path) -> Path:
    """SGLang's source, `pip download --no-deps`ed once into the cache and unpacked."""
    source = cache / f"sglang-{VERSION}"  # the package directory, sglang/, renamed
    if (source / "srt" / "server_args.py").is_file():
        return source
    if not index_reachable():
        pytest.skip(f"the package index ({index_url()}) is not reachable")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *WHEEL,
                               f"sglang=={VERSION}", "-d", tmp], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr  # the index answers: this must work
        wheel = zipfile.ZipFile(next(Path(tmp).glob("sglang-*.whl")))
        wheel.extractall(tmp, [n for n in wheel.namelist() if n.startswith(MEMBERS)])
        # Renamed into place whole: a run killed mid-way leaves no half source behind.
        os.replace(Path(tmp) / "sglang", source)
    return source


def argv_for(flag: dict) -> list[str]:
    """One use of the flag as an SGLang user writes it."""
    if not flag["takes_value"]:
        return [flag["names"][0]]
    return [flag["names"][0], str((flag["choices"] or ["1"])[0])]


def test_the_list_is_sglang_0_5_23_s_and_complete() -> None:
    assert SGLANG["sglang"] == "0.5.23"
    names = {n for f in SGLANG["flags"] for n in f["names"]}
    assert len(SGLANG["flags"]) > 500
    # The ones the issue names, and the aliases and negations argparse derives.
    assert {"--enable-metrics", "--attention-backend", "--context-length", "--dtype",
            "--json-model-override-args", "--tp-size", "--tensor-parallel-size",
            "--mem-fraction-static", "--disable-radix-cache", "--model",
            "--no-enable-tf32-matmul", "--served-model-name", "--api-key"} <= names


def test_the_committed_list_is_what_the_generator_reads_from_the_source() -> None:
    given = os.environ.get("SGLANG_SOURCE")  # an unpacked copy, on a machine without an index
    source = Path(given) if given else fetch_sglang(CACHE)
    assert sglang_flags(source) == SGLANG["flags"]


@pytest.mark.parametrize("flag", SGLANG["flags"], ids=lambda f: f["names"][0])
def test_every_sglang_flag_is_accepted(flag: dict) -> None:
    for name in flag["names"]:
        args = parser().parse_args([name, *argv_for(flag)[1:], "--model-path", "m"])
        # --model-path is repeatable here (several models, issue 29): both are served
        assert args.model_path == ("1" if flag["dest"] == "model_path" else "m")
        assert args.model_paths[-1] == "m"


def test_all_at_once_with_the_rest_reported_as_inert() -> None:
    argv = [a for f in SGLANG["flags"] for a in argv_for(f)] + ["--model-path", "m"]
    args = parser().parse_args(argv)
    inert = flags.inert_given(args)
    acting = {"--model-path", "--host", "--port", "--api-key", "--served-model-name",
              "--chat-template", "--trust-remote-code", "--is-embedding", "--log-level",
              "--allow-auto-truncate", "--context-length", "--json-model-override-args",
              "--enable-metrics", "--dtype", "--allowed-media-domains"}
    assert set(inert) == {f["names"][0] for f in SGLANG["flags"]} - acting
    assert args.context_length == 1 and args.dtype == "auto"


def test_the_seed_command_line_starts(caplog: pytest.LogCaptureFixture) -> None:
    """SGLang's documented BGE command line, abbreviations (--tp) included."""
    args = parser().parse_args(["--model-path", "BAAI/bge-m3", "--is-embedding",
                                "--attention-backend", "triton", "--tp", "2",
                                "--mem-fraction-static", "0.8", "--enable-metrics"])
    assert flags.inert_given(args) == ["--attention-backend", "--mem-fraction-static",
                                       "--tp-size"]
    assert args.enable_metrics


def test_one_log_line_names_the_inert_flags(caplog: pytest.LogCaptureFixture,
                                            tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="server")
    with pytest.raises(SystemExit):  # no such model: startup fails after the log line
        main(["--model-path", str(tmp_path / "missing"), "--disable-radix-cache",
              "--cuda-graph-max-bs-decode", "8", "--build-only", "--backend", "onnxruntime",
              "--builder-python", "/bin/false", "--artifact-cache", str(tmp_path)])
    lines = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert lines == ["SGLang flags with no effect in this server: --cuda-graph-max-bs-decode "
                     "--disable-radix-cache"]


@pytest.mark.parametrize(("argv", "want"), [
    ([], "fp32"), (["--dtype", "auto"], "fp32"), (["--dtype", "half"], "fp16"),
    (["--dtype", "float16"], "fp16"), (["--dtype", "bfloat16"], "bf16"),
    (["--dtype", "float"], "fp32"), (["--dtype", "float32"], "fp32"),
    (["--dtype", "float16", "--precision", "int8"], "int8"),
])
def test_dtype_is_the_first_use_build_precision(argv: list[str], want: str) -> None:
    assert precision(parser().parse_args(["--model-path", "m", *argv])) == want


def test_a_dtype_sglang_refuses_is_refused() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--model-path", "m", "--dtype", "fp8"])
