"""The output-form rows of `make bench`: what quantized answers and chunked long inputs cost
the real server, each as a ratio to a baseline measured in the same run.

- Quantized: the same 32-sentence requests answered as float (the baseline), base64,
  int8, ubinary and embedding_types [float, int8, ubinary] in base64; sentences/s and the
  answer's bytes per sentence. Forms are interleaved round by round (a shared VM drifts),
  each ratio taken within a round, the median reported.
- Chunked: long documents (consecutive sentences of the corpus joined, past the model's
  256 tokens) sent with "chunking": true, against the same documents cut to 256 tokens
  ("truncate": true): server CPU per token embedded (usage.prompt_tokens), so the ratio
  says what a chunked token costs against an ordinary one.
`python -m bench.outputs [--quick]` runs it alone and rewrites its BENCHMARKS.md section.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import orjson

from bench.corpus import load_sentences
from bench.document import section_main
from bench.http_load import closed_loop
from bench.machine import cpu_model, versions
from bench.serving import process_cpu_s
from devtools.helpers import build_artifact, minilm_checkpoint, running_server, server_pid

SENTENCES_PER_REQUEST = 32
CONCURRENCY = 16
SENTENCES_PER_DOCUMENT = 24  # ~600 tokens of the corpus: three chunks of all-MiniLM's 256
FORMS: dict[str, dict[str, Any]] = {
    "float": {},
    "base64": {"encoding_format": "base64"},
    "int8": {"encoding_format": "int8"},
    "ubinary": {"encoding_format": "ubinary"},
    "embedding_types [float, int8, ubinary], base64": {
        "embedding_types": ["float", "int8", "ubinary"], "encoding_format": "base64"},
}
LONG: dict[str, dict[str, Any]] = {"truncate": {"truncate": True},
                                   "chunking": {"chunking": True}}


def bodies(groups: Sequence[Sequence[str]], extra: dict[str, Any]) -> list[bytes]:
    return [orjson.dumps({"model": "bench", "input": list(g), **extra}) for g in groups]


def groups_of(sentences: Sequence[str], size: int) -> list[list[str]]:
    return [list(sentences[i:i + size]) for i in range(0, len(sentences) - size + 1, size)]


@dataclass(frozen=True)
class Load:
    seconds: float
    answer_bytes: int
    tokens: int  # usage.prompt_tokens summed
    server_cpu_s: float  # the server process's user + system time: robust on a busy host


def load(url: str, pid: int, requests: list[bytes]) -> Load:
    """The requests at CONCURRENCY."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    before = process_cpu_s(pid)
    seconds, _, answers = asyncio.run(closed_loop(host, int(port), requests, CONCURRENCY))
    cpu = process_cpu_s(pid) - before
    tokens = sum(orjson.loads(a)["usage"]["prompt_tokens"] for a in answers)
    return Load(seconds, sum(map(len, answers)), tokens, cpu)


def measure(url: str, pid: int, cases: dict[str, list[bytes]], rounds: int
            ) -> dict[str, list[Load]]:
    """Every case once per round, in the same order: one load each."""
    out: dict[str, list[Load]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, requests in cases.items():
            out[name].append(load(url, pid, requests))
    return out


def ratios(runs: dict[str, list[Load]], base: str, value: Callable[[Load], float]
           ) -> dict[str, float]:
    """Median over rounds of value(case) / value(base) in the same round."""
    return {name: statistics.median(value(r) / value(b) for r, b in zip(results, runs[base]))
            for name, results in runs.items()}


def median(runs: list[Load], value: Callable[[Load], float]) -> float:
    return statistics.median(value(r) for r in runs)


def section(quick: bool, formed: dict[str, list[Load]], long: dict[str, list[Load]],
            sentences: int, documents: int, rounds: int) -> str:
    versions_line = ", ".join(f"{k} {v}" for k, v in versions().items())
    speed = ratios(formed, "float", lambda r: 1 / r.seconds)
    cpu = ratios(formed, "float", lambda r: r.server_cpu_s)
    lines = [
        "## Output forms: quantized answers and chunked long inputs",
        "",
        f"`python -m bench.outputs{' --quick' if quick else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, "
        f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the end); "
        f"{versions_line}. The real server on all-MiniLM-L6-v2 fp32, {CONCURRENCY} clients; "
        f"medians of {rounds} interleaved rounds, each ratio taken within its round. Server "
        "CPU is the server process's user + system time, which other load on the host moves "
        "less than wall-clock rates.",
        "",
        f"{sentences} sentences in {SENTENCES_PER_REQUEST}-sentence requests:",
        "",
        "| answer | sentences/s | x float | server CPU per sentence | x float | bytes per "
        "sentence |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in formed.items():
        lines.append(
            f"| {name} | {sentences / median(runs, lambda r: r.seconds):,.0f} | "
            f"{speed[name]:.2f} | {median(runs, lambda r: r.server_cpu_s) / sentences * 1e6:,.0f}"
            f" us | {cpu[name]:.2f} | {runs[0].answer_bytes / sentences:,.0f} |")
    per_token = ratios(long, "truncate", lambda r: r.server_cpu_s / r.tokens)
    lines += ["", f"{documents} documents of {SENTENCES_PER_DOCUMENT} consecutive sentences "
              "(past 256 tokens), one per request:", "",
              "| long inputs | tokens embedded | tokens/s | server CPU per token | x truncate |",
              "|---|---:|---:|---:|---:|"]
    for name, runs in long.items():
        lines.append(f"| {name} | {runs[0].tokens:,} | "
                     f"{runs[0].tokens / median(runs, lambda r: r.seconds):,.0f} | "
                     f"{median(runs, lambda r: r.server_cpu_s / r.tokens) * 1e6:.0f} us | "
                     f"{per_token[name]:.2f} |")
    return "\n".join(lines)


def run(cache: Path, quick: bool) -> str:
    artifact = build_artifact(minilm_checkpoint(), cache / "fp32")
    sentences = load_sentences(800 if quick else None)
    groups = groups_of(sentences, SENTENCES_PER_REQUEST)
    documents = [" ".join(g) for g in groups_of(sentences, SENTENCES_PER_DOCUMENT)]
    rounds = 2 if quick else 3
    with running_server(artifact, "--log-level", "warning") as url:
        pid = server_pid(url)
        formed = measure(url, pid, {name: bodies(groups, extra)
                                    for name, extra in FORMS.items()}, rounds)
        long = measure(url, pid, {name: bodies([[d] for d in documents], extra)
                                  for name, extra in LONG.items()}, rounds)
    return section(quick, formed, long, len(groups) * SENTENCES_PER_REQUEST, len(documents),
                   rounds)


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(argv, "python -m bench.outputs", __doc__, "outputs", run,
                        "800 sentences, 2 rounds")


if __name__ == "__main__":
    sys.exit(main())
