"""The parity gate for rerankers: the artifact, served by the runtime's own pipeline (pair
tokenising, document truncation, the batcher, the activation), against the reference's
scores (sentence-transformers' CrossEncoder.predict) on fixed probe pairs. A score further
than the precision's tolerance from the reference refuses the build."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builder import families
from builder.verify import probe_texts, text_heads
from models.family import Family
from models.spec import ModelSpec

# Absolute score tolerance per precision. fp32 is the 1e-4. The tiny cross-encoder
# measured 2.4e-7 (fp32), 2.4e-4 (fp16) and 1.4e-2 (int8) on these probes; the reduced
# precisions' bounds are set with headroom over that and are not yet measured on released
# rerankers (bge-reranker, ms-marco MiniLM).
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 3e-2, "int8": 5e-2}
QUERIES = ("What is the capital of France?", "fox", "Ünïcödé café, 中文字符 🙂")


@dataclass(frozen=True)
class PairVerification:
    max_abs_diff: float
    mean_abs_diff: float
    pairs: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, float | int | str]:
        return {"max_abs_diff": self.max_abs_diff, "mean_abs_diff": self.mean_abs_diff,
                "pairs": self.pairs, "tolerance": self.tolerance, "method": "onnxruntime"}


def probe_pairs(spec: ModelSpec, heads: int = 1) -> list[tuple[str, str]]:
    """Every query with every probe text as the document, plus a long document: past the
    maximum (truncated, never the query) where its attention fits verify.PROBE_MEMORY."""
    docs = probe_texts(spec, heads)
    return [(q, d) for q in QUERIES for d in docs]


async def _serve(artifact: Path, pairs: list[tuple[str, str]]) -> np.ndarray:
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder

    embedder = Embedder.load(artifact, RuntimeConfig())
    await embedder.start()
    try:
        scores = [await embedder.rerank(q, [d for qq, d in pairs if qq == q], truncate=True)
                  for q in dict.fromkeys(q for q, _ in pairs)]
        return np.concatenate([s.scores for s in scores])
    finally:
        await embedder.close()


def verify(family: Family, checkpoint: str | Path, spec: ModelSpec, artifact: Path,
           precision: str = "fp32") -> PairVerification:
    pairs = probe_pairs(spec, text_heads(checkpoint))  # grouped by query, as _serve answers
    ours = asyncio.run(_serve(artifact, pairs))
    diff = np.abs(ours - families.score_reference(family, checkpoint, spec, pairs))
    return PairVerification(float(diff.max()), float(diff.mean()), len(pairs),
                            TOLERANCE[precision])
