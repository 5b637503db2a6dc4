"""The parity gates of per-token models, the artifact served by the runtime's own pipeline
(runtime/pipeline/heads.py) on the probe texts:

- bge-m3's three heads against FlagEmbedding's computation (builder/families/bge_m3.py
  reference_heads): dense vectors and every ColBERT token vector held to the precision's
  cosine and length thresholds, the sparse weights (every id either side has, a missing one
  weighing 0) to the same length tolerance, relative to the text's largest weight;
- ColBERT (PyLate) models' token vectors, as documents and as queries, against PyLate's
  encoding (builder/families/colbert.py reference_tokens), by cosine and length."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from builder import families
from builder import precision as precisions
from builder.verify import Verification, compare, long_probe, probe_texts, text_heads
from models.family import Family
from models.spec import ModelSpec


async def _serve(artifact: Path, texts: list[str], asks: list[tuple[str, str | None]]
                 ) -> list[Any]:
    """Each (output, prompt_name) of `asks` for every text, truncating."""
    from runtime.adapters.heads import Output
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder
    from runtime.pipeline.heads import embed_output

    embedder = Embedder.load(artifact, RuntimeConfig())
    await embedder.start()
    try:
        return [(await embedder.embed_texts(texts, truncate=True)).vectors if output == "dense"
                else (await embed_output(embedder, texts, Output(output), truncate=True,
                                         prompt_name=prompt)).rows
                for output, prompt in asks]
    finally:
        await embedder.close()


def _counted(ours: list[np.ndarray], reference: list[np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray]:
    counts = [(len(a), len(b)) for a, b in zip(ours, reference)]
    if any(a != b for a, b in counts):
        raise ValueError(f"token vectors per probe {counts} (ours, the reference's) differ")
    return np.concatenate(ours), np.concatenate(reference)


def _joined(heads: list[Verification], extra_error: float, method: str,
            spec: ModelSpec, checkpoint: str | Path) -> Verification:
    """One record for several comparisons: the worst of each figure."""
    return dataclasses.replace(
        heads[0], min_cosine=min(h.min_cosine for h in heads),
        mean_cosine=float(np.mean([h.mean_cosine for h in heads])),
        max_length_error=max(*(h.max_length_error for h in heads), extra_error),
        method=method, long_probe=long_probe(spec, text_heads(checkpoint)).note)


def sparse_error(ours: list[Any], reference: list[dict[int, float]]) -> float:
    """Largest |our weight - the reference's| over each text's largest reference weight."""
    worst = 0.0
    for row, want in zip(ours, reference):
        got = dict(zip(row.indices.tolist(), row.values.tolist()))
        scale = max(want.values(), default=1.0) or 1.0
        diffs = [abs(got.get(k, 0.0) - want.get(k, 0.0)) for k in set(got) | set(want)]
        worst = max(worst, max(diffs, default=0.0) / scale)
    return worst


def verify(family: Family, checkpoint: str | Path, spec: ModelSpec, artifact: Path,
           precision: str = "fp32") -> Verification:
    """bge-m3: dense, sparse and ColBERT against FlagEmbedding's computation."""
    texts = probe_texts(spec, text_heads(checkpoint))
    dense, sparse, colbert = asyncio.run(_serve(artifact, texts, [
        ("dense", None), ("sparse", None), ("multi_vector", None)]))
    want = families.exporter(family).reference_heads(checkpoint, spec, texts)
    threshold = precisions.get(precision).min_cosine
    heads = [compare(dense, np.stack([w[0] for w in want]), threshold),
             compare(*_counted(colbert, [w[2] for w in want]), threshold)]
    return _joined(heads, sparse_error(sparse, [w[1] for w in want]),
                   "onnxruntime: dense, ColBERT (cosine, length) and sparse weights",
                   spec, checkpoint)


def verify_tokens(family: Family, checkpoint: str | Path, spec: ModelSpec, artifact: Path,
                  precision: str = "fp32") -> Verification:
    """ColBERT: every token vector of the probes as documents and as queries."""
    texts = probe_texts(spec, text_heads(checkpoint))
    served = asyncio.run(_serve(artifact, texts, [("multi_vector", None),
                                                  ("multi_vector", "query")]))
    exporter = families.exporter(family)
    threshold = precisions.get(precision).min_cosine
    heads = [compare(*_counted(ours, exporter.reference_tokens(checkpoint, spec, texts, query)),
                     threshold) for ours, query in zip(served, (False, True))]
    return _joined(heads, 0.0, "onnxruntime: document and query token vectors", spec,
                   checkpoint)
