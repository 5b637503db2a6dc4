"""Two models in one appliance under mixed load (issue 29): each model's throughput against
the same model served alone, in the same run, on the same cores.

The models: all-MiniLM-L6-v2 (embedder, /v1/embeddings, 32 sentences per request) and
bench/rerank.py's cross-encoder of the same body (/v1/rerank, 32 documents per request).
Three servers, one after another, each loaded for WINDOW_S seconds by closed-loop clients
(bench/http_load.py's client), CLIENTS per model: the embedder alone, the reranker alone
(each with every core, as one model is served), then both in one appliance with both loads
at once (each model gets half the cores: server/launch_server.py share_cores). Reported:
rows/s of each model alone and mixed, their ratio, the p50/p99 latency, and the share of
the alone rate each model kept: with both saturated on shared cores, a fair appliance keeps
about half for each, and a starved model would keep far less than the other. Every answer
is checked against the same request's answer from the model alone.

`python -m bench.multi_model [--quick]` rewrites its BENCHMARKS.md section (`make bench`
runs it too).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import orjson

from bench.corpus import load_sentences
from bench.document import section_main
from bench.http_load import Connection
from bench.machine import cpu_model
from bench.rerank import minilm_cross_encoder
from bench.stats import percentile_ms
from devtools.helpers import (build_artifact, decode_embeddings, minilm_checkpoint,
                              running_server)

ROWS = 32  # sentences, or documents, per request
CLIENTS = 4  # closed-loop clients per model
WINDOW_S = 15.0
PATHS = {"embed": "/v1/embeddings", "rerank": "/v1/rerank"}
QUIET = ("--log-level", "warning")  # no access line per request


@dataclass(frozen=True)
class Load:
    model: str
    requests: int
    seconds: float
    latencies_s: tuple[float, ...]
    answers: dict[int, bytes]  # body index -> the last answer to it

    @property
    def rows_per_s(self) -> float:
        return self.requests * ROWS / self.seconds


def bodies(model: str, sentences: list[str], count: int) -> list[bytes]:
    """`count` requests for `model`, each of ROWS rows from the corpus."""
    out = []
    for i in range(count):
        rows = [sentences[(i * ROWS + j) % len(sentences)] for j in range(ROWS)]
        body = ({"model": model, "input": rows} if model == "embed" else
                {"model": model, "query": rows[0], "documents": rows, "return_documents": False})
        out.append(orjson.dumps(body))
    return out


async def timed_loop(port: int, model: str, requests: list[bytes], window_s: float) -> Load:
    """CLIENTS clients send `requests` round-robin until the window closes."""
    conns = [await Connection.open("127.0.0.1", port) for _ in range(CLIENTS)]
    await asyncio.gather(*(c.post(PATHS[model], requests[0]) for c in conns))  # warm
    latencies: list[float] = []
    answers: dict[int, bytes] = {}
    counter = iter(range(1 << 30))
    start = time.perf_counter()
    deadline = start + window_s

    async def client(conn: Connection) -> None:
        while (now := time.perf_counter()) < deadline:
            i = next(counter) % len(requests)
            answers[i] = await conn.post(PATHS[model], requests[i])
            latencies.append(time.perf_counter() - now)

    await asyncio.gather(*(client(c) for c in conns))
    seconds = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return Load(model, len(latencies), seconds, tuple(latencies), answers)


def load(url: str, work: dict[str, list[bytes]], window_s: float) -> list[Load]:
    port = int(url.rsplit(":", 1)[1])

    async def both() -> list[Load]:
        return list(await asyncio.gather(*(timed_loop(port, m, b, window_s)
                                           for m, b in work.items())))

    return asyncio.run(both())


def agreement(mixed: Load, alone: Load) -> float:
    """Largest difference between an answer mixed and the same request's answer alone."""
    worst = 0.0
    for i, body in mixed.answers.items():
        if i not in alone.answers:
            continue
        if mixed.model == "embed":
            a, b = (decode_embeddings(orjson.loads(x)) for x in (body, alone.answers[i]))
        else:
            a, b = (np.array([r["score"] for r in sorted(orjson.loads(x),
                                                         key=lambda r: r["index"])])
                    for x in (body, alone.answers[i]))
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def run(cache: Path, quick: bool) -> str:
    window = 5.0 if quick else WINDOW_S
    embedder = build_artifact(minilm_checkpoint(), cache / "fp32")
    reranker = build_artifact(minilm_cross_encoder(cache / "minilm-cross-encoder"),
                              cache / "rerank-fp32")
    sentences = load_sentences(400 if quick else None)
    work = {m: bodies(m, sentences, 64) for m in PATHS}
    alone = {}
    for model, artifact in (("embed", embedder), ("rerank", reranker)):
        with running_server(artifact, "--served-model-name", model, *QUIET) as url:
            (alone[model],) = load(url, {model: work[model]}, window)
    with running_server(embedder, "--model-path", str(reranker), "--served-model-name",
                        "embed", "--served-model-name", "rerank", *QUIET) as url:
        mixed = {m.model: m for m in load(url, work, window)}
    return report(alone, mixed, window, quick)


def report(alone: dict[str, Load], mixed: dict[str, Load], window: float, quick: bool) -> str:
    rows = []
    for model in PATHS:
        a, m = alone[model], mixed[model]
        rows.append(f"| {model} ({PATHS[model]}) | {a.rows_per_s:.0f} | {m.rows_per_s:.0f} | "
                    f"{m.rows_per_s / a.rows_per_s:.2f}x | "
                    f"{percentile_ms(a.latencies_s, 50):.0f} / "
                    f"{percentile_ms(a.latencies_s, 99):.0f} | "
                    f"{percentile_ms(m.latencies_s, 50):.0f} / "
                    f"{percentile_ms(m.latencies_s, 99):.0f} | "
                    f"{agreement(m, a):.1e} |")
    shares = [mixed[m].rows_per_s / alone[m].rows_per_s for m in PATHS]
    return "\n".join([
        "## Two models in one appliance (mixed load)",
        "",
        f"`python -m bench.multi_model{' --quick' if quick else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: all-MiniLM-L6-v2 (embedder) "
        "and bench/rerank.py's cross-encoder of the same body, fp32, ONNX Runtime CPU; "
        f"{CLIENTS} closed-loop clients per model, {ROWS} rows (sentences or documents) per "
        f"request, {window:.0f} s per load. Alone: one model per server (every core); "
        "mixed: both models in one server, both loads at once (half the cores each). "
        f"Machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; onnxruntime "
        f"{importlib.metadata.version('onnxruntime')}.",
        "",
        "| model | alone rows/s | mixed rows/s | mixed / alone | alone p50 / p99 ms | "
        "mixed p50 / p99 ms | largest difference to alone |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Each model kept {shares[0]:.2f}x and {shares[1]:.2f}x of its alone rate; the "
        f"smaller over the larger is {min(shares) / max(shares):.2f} (1.0: an even split "
        "of the machine; a starved model would be near 0). The answers mixed are the "
        "answers alone (the last column: vector components or scores).",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(argv, "python -m bench.multi_model", __doc__, "multi-model", run,
                        "5 s per load instead of 15")


if __name__ == "__main__":
    sys.exit(main())
