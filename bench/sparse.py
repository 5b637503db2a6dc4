"""A sparse row for BENCHMARKS.md: texts/s of sentence-transformers' SparseEncoder.encode
against our server's TEI /embed_sparse, in the same run, on the same cores and texts.

No SPLADE ships offline, so the model is all-MiniLM-L6-v2's body (bundled) under a seeded
masked-LM head (BertForMaskedLM at 6 layers, hidden 384, vocabulary 30522: the shape of
small SPLADEs such as rasyosef/splade-mini), its decoder bias lowered so each token gives
about 15 positive logits, about the few hundred nonzero weights per text of a trained SPLADE.
The weights are checked against SparseEncoder's. `python -m bench.sparse [--quick]` rewrites
its BENCHMARKS.md section.
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
TEXTS_PER_REQUEST = 32
CONCURRENCY = 16
POSITIVE_PER_TOKEN = 15  # logits above 0 per token, of 30522


def minilm_splade(out: Path) -> Path:
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling
    from transformers import AutoTokenizer, BertForMaskedLM

    if (out / "modules.json").is_file():
        return out
    torch.manual_seed(0)
    source, body = minilm_checkpoint(), out / "mlm"
    model = BertForMaskedLM.from_pretrained(str(source)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    with torch.no_grad():  # sparse as trained SPLADEs are: shift the logits below zero
        logits = model(**tokenizer(load_sentences(64), padding=True, return_tensors="pt")).logits
        cut = torch.quantile(logits[0].flatten()[::7].float(), 1 - POSITIVE_PER_TOKEN / 30522)
        model.cls.predictions.bias.sub_(cut)
    model.save_pretrained(str(body))
    tokenizer.save_pretrained(str(body))
    SparseEncoder(modules=[MLMTransformer(str(body)), SpladePooling("max")],
                  device="cpu").save(str(out))
    return out


def encoder_rate(checkpoint: Path, texts: list[str]) -> tuple[float, np.ndarray]:
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(str(checkpoint), device="cpu")
    model.encode(texts[:TEXTS_PER_REQUEST], batch_size=32)  # warm-up outside the clock
    start = time.perf_counter()
    weights = model.encode(texts, batch_size=32, convert_to_tensor=True)
    return len(texts) / (time.perf_counter() - start), weights.to_dense().numpy()


def server_rate(artifact: Path, texts: list[str]) -> tuple[float, list[list[dict]]]:
    bodies = [orjson.dumps({"inputs": texts[i:i + TEXTS_PER_REQUEST]})
              for i in range(0, len(texts), TEXTS_PER_REQUEST)]
    with running_server(artifact, "--log-level", "warning") as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        seconds, _, responses = asyncio.run(closed_loop(
            host, int(port), bodies, CONCURRENCY, "/embed_sparse",
            orjson.dumps({"inputs": "warm-up"})))
    rows = [row for r in responses for row in orjson.loads(r)]
    return len(rows) / seconds, rows


def largest_difference(rows: list[list[dict]], reference: np.ndarray) -> tuple[float, int]:
    """Largest |weight - SparseEncoder's| over every entry either side has, and the rows
    whose nonzero ids differ."""
    worst, differing = 0.0, 0
    for row, dense in zip(rows, reference):
        ours = np.zeros_like(dense)
        ours[[e["index"] for e in row]] = [e["value"] for e in row]
        worst = max(worst, float(np.abs(ours - dense).max()))
        differing += int(not np.array_equal(np.flatnonzero(ours), np.flatnonzero(dense)))
    return worst, differing


def run(cache: Path, quick: bool) -> str:
    checkpoint = minilm_splade(cache / "minilm-splade")
    artifact = build_artifact(checkpoint, cache / "splade-fp32")
    texts = load_sentences(256 if quick else 1024)
    ours, rows = server_rate(artifact, texts)
    theirs, reference = encoder_rate(checkpoint, texts)
    worst, differing = largest_difference(rows, reference)
    nonzero = np.mean([len(r) for r in rows])
    return "\n".join([
        "## Sparse: SparseEncoder.encode vs /embed_sparse",
        "",
        f"`python -m bench.sparse{' --quick' if quick else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: all-MiniLM-L6-v2's body under "
        "a seeded masked-LM head (a small SPLADE's shape), fp32, "
        f"{len(texts)} texts of the bench corpus, {nonzero:.0f} nonzero weights per text on "
        f"average. Machine: {describe(VERSIONED)}.",
        "",
        "| system | texts/s |",
        "|---|---|",
        f"| sentence-transformers SparseEncoder.encode, batch 32 | {theirs:.0f} |",
        f"| server /embed_sparse, {TEXTS_PER_REQUEST} texts per request, concurrency "
        f"{CONCURRENCY} | {ours:.0f} |",
        "",
        f"Server / SparseEncoder: {ours / theirs:.2f}x. Largest |weight difference| to "
        f"SparseEncoder: {worst:.1e}; texts whose nonzero ids differ: {differing}.",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(argv, "python -m bench.sparse", __doc__, "sparse", run,
                        "256 texts instead of 1024")


if __name__ == "__main__":
    sys.exit(main())
