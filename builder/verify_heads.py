"""The parity gate for bge-m3's three heads: the artifact, served by the runtime's own
pipeline (runtime/pipeline/heads.py), against FlagEmbedding's computation
(builder/families/bge_m3.py reference_heads) on the probe texts. Dense vectors and every
ColBERT token vector are held to the precision's cosine and length thresholds, and the
sparse weights (every id either side has, a missing one weighing 0) to the same length
tolerance, relative to the text's largest weight."""

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


async def _serve(artifact: Path, texts: list[str]) -> tuple[np.ndarray, list[Any], list[Any]]:
    from runtime.adapters.heads import Output
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder
    from runtime.pipeline.heads import embed_output

    embedder = Embedder.load(artifact, RuntimeConfig())
    await embedder.start()
    try:
        dense = await embedder.embed_texts(texts, truncate=True)
        sparse = await embed_output(embedder, texts, Output.SPARSE, truncate=True)
        colbert = await embed_output(embedder, texts, Output.MULTI_VECTOR, truncate=True)
        return dense.vectors, sparse.rows, colbert.rows
    finally:
        await embedder.close()


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
    texts = probe_texts(spec, text_heads(checkpoint))
    dense, sparse, colbert = asyncio.run(_serve(artifact, texts))
    want = families.exporter(family).reference_heads(checkpoint, spec, texts)
    counts = [(len(ours), len(ref[2])) for ours, ref in zip(colbert, want)]
    if any(a != b for a, b in counts):
        raise ValueError(f"ColBERT vectors per probe {counts} (ours, the reference's) differ")
    threshold = precisions.get(precision).min_cosine
    heads = [compare(dense, np.stack([w[0] for w in want]), threshold),
             compare(np.concatenate(colbert), np.concatenate([w[2] for w in want]), threshold)]
    return dataclasses.replace(
        heads[0], min_cosine=min(h.min_cosine for h in heads),
        mean_cosine=float(np.mean([h.mean_cosine for h in heads])),
        max_length_error=max(*(h.max_length_error for h in heads),
                             sparse_error(sparse, [w[1] for w in want])),
        method="onnxruntime: dense, ColBERT (cosine, length) and sparse weights",
        long_probe=long_probe(spec, text_heads(checkpoint)).note)
