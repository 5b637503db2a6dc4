"""The rerank row of `make bench`: pairs/s of sentence-transformers' CrossEncoder.predict
against our server's /v1/rerank, in the same run, on the same cores and pairs.

No cross-encoder ships offline, so the model is all-MiniLM-L6-v2's body (bundled) under a
seeded random one-label classifier head: BertForSequenceClassification at 6 layers, hidden
384, which is the shape of cross-encoder/ms-marco-MiniLM-L-6-v2, so the time per pair is
that model's (the scores are not meaningful; they are checked against CrossEncoder's).
`python -m bench.rerank [--quick]` runs it alone and rewrites its BENCHMARKS.md section.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import orjson

from bench.corpus import load_sentences
from bench.document import section_main
from bench.http_load import closed_loop
from bench.machine import describe
from devtools.helpers import build_artifact, minilm_checkpoint, running_server

VERSIONED = ("onnxruntime", "sentence-transformers", "torch", "transformers")

DOCS_PER_QUERY = 32
CONCURRENCY = 16


def minilm_cross_encoder(out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    if (out / "config.json").is_file():
        return out
    torch.manual_seed(0)
    source = minilm_checkpoint()
    model = BertForSequenceClassification.from_pretrained(str(source), num_labels=1)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(out))
    return out


def requests_of(sentences: list[str], queries: int) -> list[tuple[str, list[str]]]:
    """(query, 32 documents) per request: each query with the sentences that follow it."""
    return [(sentences[i], [sentences[(i + 1 + j) % len(sentences)]
                            for j in range(DOCS_PER_QUERY)]) for i in range(queries)]


def cross_encoder_rate(checkpoint: Path, asks: list[tuple[str, list[str]]]
                       ) -> tuple[float, np.ndarray]:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(checkpoint), device="cpu")
    pairs = [(q, d) for q, docs in asks for d in docs]
    model.predict(pairs[:DOCS_PER_QUERY], batch_size=32)  # warm-up outside the clock
    start = time.perf_counter()
    scores = model.predict(pairs, batch_size=32, convert_to_numpy=True)
    return len(pairs) / (time.perf_counter() - start), np.asarray(scores)


def server_rate(artifact: Path, asks: list[tuple[str, list[str]]]) -> tuple[float, np.ndarray]:
    bodies = [orjson.dumps({"query": q, "documents": docs, "return_documents": False})
              for q, docs in asks]
    warm = orjson.dumps({"query": "warm-up", "documents": ["warm-up"]})
    with running_server(artifact, "--log-level", "warning") as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        seconds, _, responses = asyncio.run(closed_loop(host, int(port), bodies, CONCURRENCY,
                                                        "/v1/rerank", warm))
    scores = [row["score"] for r in responses
              for row in sorted(orjson.loads(r), key=lambda x: x["index"])]
    return len(scores) / seconds, np.asarray(scores)


def run(cache: Path, quick: bool) -> str:
    checkpoint = minilm_cross_encoder(cache / "minilm-cross-encoder")
    artifact = build_artifact(checkpoint, cache / "rerank-fp32")
    asks = requests_of(load_sentences(400 if quick else None), 12 if quick else 60)
    ours, scores = server_rate(artifact, asks)
    theirs, reference = cross_encoder_rate(checkpoint, asks)
    return "\n".join([
        "## Rerank: CrossEncoder.predict vs /v1/rerank",
        "",
        f"`python -m bench.rerank{' --quick' if quick else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: all-MiniLM-L6-v2's body under "
        "a random one-label head (ms-marco-MiniLM-L-6-v2's shape), fp32, "
        f"{len(asks)} queries x {DOCS_PER_QUERY} documents of the bench corpus. Machine: "
        f"{describe(VERSIONED)}.",
        "",
        "| system | pairs/s |",
        "|---|---|",
        f"| sentence-transformers CrossEncoder.predict, batch 32 | {theirs:.0f} |",
        f"| server /v1/rerank, {DOCS_PER_QUERY} documents per request, concurrency "
        f"{CONCURRENCY} | {ours:.0f} |",
        "",
        f"Largest |score difference| to CrossEncoder: {np.abs(scores - reference).max():.1e}.",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(argv, "python -m bench.rerank", __doc__, "rerank", run,
                        "12 queries instead of 60")


if __name__ == "__main__":
    sys.exit(main())
