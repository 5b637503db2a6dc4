"""The serving path at GPU speed, without a GPU: the real server around the stand-in engine.

`python -m bench.serving` (and `make bench`, its own section of BENCHMARKS.md) starts
`python -m bench.standin` (the real server process, bench/standin.py's engine in place of
the graph: issue 26's H200 costs by default) and loads it with the closed-loop client of
bench/http_load.py in four shapes: 64-sentence requests x 8 clients, 1-sentence x 64 and
x 256, 256-sentence x 4. For each it reports the server's tokens/s as a fraction of the
stand-in's own ceiling (the engine alone on the same rows, sorted, in full batches, as many
in flight as the server runs), requests/s and latency, and the server process's CPU per
input row and per request (from /proc: its own user + system time over the run). Every
answer is checked against its own input (the stand-in's vectors say what they were fed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import orjson

from bench.http_load import closed_loop
from bench.stats import percentile_ms
from bench.standin import StandInCost, ceiling, expected

# (sentences per request, clients): issue 26's shapes
SHAPES = ((64, 8), (1, 64), (1, 256), (256, 4))
# Targets of issue 26 for the stand-in on a 2-core machine (server CPU)
ROW_CPU_TARGET_US = 30.0
REQUEST_CPU_TARGET_US = 300.0


@dataclass(frozen=True)
class ServingRun:
    size: int  # sentences per request
    clients: int
    requests: int
    rows: int
    tokens: int  # real tokens
    seconds: float
    latencies_s: tuple[float, ...]
    server_cpu_s: float  # the server process's user + system time during the run
    ceiling_tokens_per_s: float  # the stand-in alone on the same rows
    ids: bool = False  # the requests sent token ids (no tokenising), not text

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def of_ceiling(self) -> float:
        return self.tokens_per_s / self.ceiling_tokens_per_s

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_row_us(self) -> float:
        return self.server_cpu_s / self.rows * 1e6

    @property
    def cpu_per_request_us(self) -> float:
        return self.server_cpu_s / self.requests * 1e6

    def latency_ms(self, q: float) -> float:
        return percentile_ms(self.latencies_s, q)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def requests_for(sentences: Sequence[str], size: int, clients: int, min_rows: int
                 ) -> list[list[str]]:
    """Enough `size`-sentence requests to cover `min_rows` rows and keep every client busy
    for several rounds, cycling through the corpus."""
    count = max(clients * 8, -(-min_rows // size))
    return [[sentences[(i * size + k) % len(sentences)] for k in range(size)]
            for i in range(count)]


def load(url: str, pid: int, calls: list[list[str]], clients: int,
         rows_of: dict[str, list[int]], dims: int, ceiling_tps: float,
         ids: bool = False) -> ServingRun:
    """One closed-loop run (the texts, or with `ids` their token ids); every answer checked
    against the stand-in's signature."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    inputs = [[rows_of[t] for t in c] if ids else c for c in calls]
    bodies = [orjson.dumps({"model": "bench", "input": c[0] if len(c) == 1 else c})
              for c in inputs]
    before = process_cpu_s(pid)
    seconds, latencies, responses = asyncio.run(closed_loop(host, int(port), bodies, clients))
    cpu = process_cpu_s(pid) - before
    for call, response in zip(calls, responses):
        got = np.array([d["embedding"][:2] for d in orjson.loads(response)["data"]])
        want = expected([rows_of[t] for t in call], dims)[:, :2]
        if not np.array_equal(got, want):
            raise AssertionError(f"an answer does not match its own input: {got} vs {want}")
    rows = sum(len(c) for c in calls)
    tokens = sum(len(rows_of[t]) for c in calls for t in c)
    return ServingRun(len(calls[0]), clients, len(calls), rows, tokens, seconds,
                      tuple(latencies), cpu, ceiling_tps, ids)


def measure(artifact: Path, sentences: Sequence[str], cost: StandInCost, in_flight: int,
            min_rows: int, extra_flags: Sequence[str] = ()) -> list[ServingRun]:
    from runtime.artifact import Artifact
    from runtime.tokenizer import TextTokenizer

    opened = Artifact.open(artifact)
    tokenizer = TextTokenizer(opened.tokenizer_path, opened.spec.max_len)
    rows_of = dict(zip(sentences, tokenizer.encode(list(sentences), truncate=True)))
    batch_rows = 64
    seconds, tokens = ceiling(list(rows_of.values()), cost, batch_rows, in_flight)
    ceiling_tps = tokens / seconds
    runs = []
    with standin_server(artifact, cost, in_flight, extra_flags) as (url, pid):
        for (size, clients), ids in [*((s, False) for s in SHAPES),
                                     *((s, True) for s in SHAPES if s[0] > 1)]:
            calls = requests_for(sentences, size, clients, min_rows)
            runs.append(load(url, pid, calls, clients, rows_of, opened.spec.dims, ceiling_tps,
                             ids))
    return runs


@contextlib.contextmanager
def standin_server(artifact: Path, cost: StandInCost, in_flight: int,
                   extra_flags: Sequence[str] = ()) -> Iterator[tuple[str, int]]:
    """`python -m bench.standin` on a free port until the block ends: (URL, pid), ready."""
    from devtools.helpers import ROOT, free_port, wait_healthy

    port = free_port()
    cmd = [sys.executable, "-m", "bench.standin", "--model-path", str(artifact),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--call-ms", str(cost.call_ms), "--token-us", str(cost.token_us),
           "--batches-in-flight", str(in_flight), *extra_flags]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 120)
        _wait_ready(url)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_ready(url: str, timeout_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


def table(runs: Sequence[ServingRun]) -> list[str]:
    lines = ["| requests | clients | tokens/s | of ceiling | req/s | p50 ms | p99 ms "
             "| server CPU per row | per request |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(
            f"| {r.size}-{'token-id row' if r.ids else 'sentence'} | {r.clients} | {r.tokens_per_s:,.0f} | {r.of_ceiling:.0%} "
            f"| {r.requests_per_s:,.0f} | {r.latency_ms(50):.1f} | {r.latency_ms(99):.1f} "
            f"| {r.cpu_per_row_us:.0f} us | {r.cpu_per_request_us:.0f} us |")
    return lines


def targets(runs: Sequence[ServingRun]) -> list[str]:
    """Issue 26's CPU targets: per row for the multi-sentence shapes, per request for the
    one-sentence ones."""
    lines = []
    for r in runs:
        value, target, unit = ((r.cpu_per_row_us, ROW_CPU_TARGET_US, "row") if r.size > 1
                               else (r.cpu_per_request_us, REQUEST_CPU_TARGET_US, "request"))
        verdict = "met" if value <= target else "missed"
        kind = "token-id rows" if r.ids else "sentences"
        lines.append(f"- server CPU per {unit}, {r.size} {kind} per request x {r.clients}: "
                     f"{value:.0f} us (target <= {target:.0f} us) **{verdict}**")
    return lines


def tokenizer_cpu_us(artifact: Path, sentences: Sequence[str]) -> float:
    """CPU per sentence of the model's tokenizer alone (encode_raw, 64 at a time)."""
    from runtime.artifact import Artifact
    from runtime.tokenizer import TextTokenizer

    opened = Artifact.open(artifact)
    tokenizer = TextTokenizer(opened.tokenizer_path, opened.spec.max_len)
    started = time.process_time()
    for i in range(0, len(sentences), 64):
        tokenizer.encode_raw(sentences[i:i + 64])
    return (time.process_time() - started) / len(sentences) * 1e6


def section(artifact: Path, sentences: Sequence[str], rows: int) -> str:
    """BENCHMARKS.md's serving section: the stand-in at H200 speed, then at no cost."""
    from bench import machine

    cost = StandInCost()
    runs = measure(artifact, sentences, cost, 2, rows)
    free = measure(artifact, sentences, StandInCost(0.0, 0.0), 2, rows)
    versions = ", ".join(f"{k} {v}" for k, v in machine.versions().items())
    return "\n".join([
        "## Serving at GPU speed (stand-in engine, no GPU)", "",
        f"Written by `python -m bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" ({machine.cpu_model()}, {len(os.sched_getaffinity(0))} cores; {versions}).",
        "The real server process (`python -m bench.standin`: the artifact's tokenizer and "
        "spec, bench/standin.py's engine in place of its graph) under the closed-loop client "
        "of bench/http_load.py on the same cores, the Lee corpus as text. The stand-in costs "
        f"{cost.call_ms} ms per call on its own thread plus {cost.token_us} us per padded "
        "token on one shared device (issue 26's H200 figures for a bge-base-shaped BERT fp16 "
        "on ONNX Runtime CUDA); the server runs it as ONNX Runtime CUDA is run: 256 rows per "
        "call, 2 batches in flight, the call cost measured at startup. Ceiling: the stand-in "
        "alone on the corpus sorted by length, 64 rows per call, 2 in flight (the issue's "
        "'raw engine, batches of 64 sorted rows'). Server CPU: the server process's user + "
        "system time over the run (its tokenizer threads included). The token-id rows send the "
        "same rows as token ids: the serving path without the tokenizer.", "",
        *table(runs), "",
        *targets(runs), "",
        f"The tokenizer alone (HF tokenizers, this model's WordPiece) costs "
        f"{tokenizer_cpu_us(artifact, sentences):.0f} us of CPU per corpus sentence here: "
        "that much of each text row's CPU is the tokenizer's, whatever the server does.", "",
        "One event loop's ceiling, the same server and shapes with an engine that costs "
        "nothing (0 ms per call, 0 us per token); 'of ceiling' is then meaningless:", "",
        *table(free)])


def main(argv: Sequence[str] | None = None) -> None:
    from bench.corpus import load_sentences
    from devtools.helpers import build_artifact, minilm_checkpoint

    p = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__)
    p.add_argument("--artifact", type=Path, default=None)
    p.add_argument("--call-ms", type=float, default=StandInCost().call_ms)
    p.add_argument("--token-us", type=float, default=StandInCost().token_us)
    p.add_argument("--in-flight", type=int, default=2)
    p.add_argument("--rows", type=int, default=20_000, help="input rows per shape (at least)")
    p.add_argument("flags", nargs="*", help="more server flags, after --")
    a = p.parse_args(argv)
    artifact = a.artifact or build_artifact(minilm_checkpoint(), Path(".cache/bench/serving"))
    runs = measure(artifact, load_sentences(), StandInCost(a.call_ms, a.token_us),
                   a.in_flight, a.rows, a.flags)
    print("\n".join(table(runs)))


if __name__ == "__main__":
    main()
