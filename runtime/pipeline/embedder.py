"""The embedding pipeline, one for every family: the facade the server calls.

A request goes: admission (429 before any work), the `dimensions` check, the prompt, the
family adapter's `prepare` (tokenising here: inline for short requests, a thread pool for
long ones; images fetched and preprocessed in another), the request token limit, one
token-budget Batcher per tower (the backend runs on the batcher's threads), the adapter's
`combine` (one vector per item, in input order), then Matryoshka truncation and usage.
What differs between families is in runtime/adapters/, chosen by the spec's family through
runtime/adapters/registry.py.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Awaitable, Mapping, Sequence

import numpy as np

from models.spec import ModelSpec
from runtime.adapters.base import Adapter, Capability, Embedding, PairScoring, Work
from runtime.adapters.cross_encoder import CrossEncoderAdapter
from runtime.adapters.registry import adapter_for
from runtime.artifact import Artifact
from runtime.backends.base import Backend
from runtime.pipeline.choose import open_backends
from runtime.pipeline.batcher import BatchConfig, Batcher, RunFn
from runtime.config import RuntimeConfig
from runtime.errors import InvalidRequestError
from runtime.pipeline.calibrate import measure_call_cost
from runtime.pipeline.limits import needs_call_cost, plan_bound, resolve_batch
from runtime.pipeline.checks import check_dimensions, check_items, prompt_for
from runtime.pipeline.chunking import chunker_for, chunking_on, pool, split_long
from runtime.quantization import Quantizer, calibrates
from runtime.pipeline.stages import PipelineStages
from runtime.tokenizer import TextTokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: np.ndarray  # (n, dims) float32, in input order
    prompt_tokens: int
    chunks: int | None = None  # rows embedded, where long inputs were chunked


@dataclass(frozen=True)
class RerankResult:
    scores: np.ndarray  # (n,) float32, one per document, in document order
    prompt_tokens: int


class Embedder:
    """`backends` by tower name, for callers that wrap them (tests); opened here otherwise."""

    def __init__(self, artifact: Artifact, config: RuntimeConfig,
                 backends: Mapping[str, Backend] | None = None):
        self.artifact = artifact
        self.spec: ModelSpec = artifact.spec
        self.config = config
        adapter_class = adapter_for(artifact)  # an unknown family fails before any loading
        self.tokenizer = TextTokenizer(artifact.tokenizer_path, self.spec.max_len)
        self.adapter: Adapter = adapter_class(artifact, self.tokenizer)
        self.backends = open_backends(artifact, config, self.adapter.towers, backends or {})
        self.batchers = {t.name: Batcher(self._runner(t.name), self._limits(t.name))
                         for t in self.adapter.towers}
        main = self.adapter.towers[0].name
        self.backend, self.batcher = self.backends[main], self.batchers[main]
        # what adapters use while they prepare a request (runtime.adapters.base.Stages)
        self.stages = PipelineStages(self.tokenizer, config, self.batchers)
        self.quantizer = Quantizer(artifact.path, artifact.manifest.calibration,
                                   calibrates(self.spec))

    def _limits(self, tower: str) -> BatchConfig:
        """The tower's batch limits: flags, backend and build record, settled once."""
        backend = self.backends[tower]
        built = plan_bound(self.artifact.manifest.limits, backend.name)
        return resolve_batch(self.config.batch, backend.limits, built, tower, self.spec)

    @classmethod
    def load(cls, artifact: Artifact | str | Path, config: RuntimeConfig) -> "Embedder":
        opened = artifact if isinstance(artifact, Artifact) else Artifact.open(artifact)
        return cls(opened, config)

    def _runner(self, tower: str) -> RunFn:
        backend, adapter = self.backends[tower], self.adapter

        def run(rows: list[Any]) -> Any:  # on the batcher's thread
            return adapter.split(tower, rows, backend.embed(adapter.feeds(tower, rows)))

        return run

    async def start(self) -> None:
        for batcher in self.batchers.values():
            batcher.start()
        await self.adapter.warm_up(self.stages)
        await self._measure_call_cost()

    async def _measure_call_cost(self) -> None:
        """The token tower's call cost in tokens, where its backend does not know it (GPUs):
        batch planning then weighs padding against calls as this device does."""
        tower = self.adapter.towers[0].name
        if not needs_call_cost(self.config.batch, self.backends[tower].limits):
            return
        batcher = self.batchers[tower]
        cost = await asyncio.to_thread(measure_call_cost, self._runner(tower),
                                       self.adapter.probe_row, batcher.cfg, self.spec.max_len)
        batcher.cfg = replace(batcher.cfg, call_cost_tokens=cost)

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.stages.close()
        for backend in self.backends.values():
            backend.close()

    async def embed_texts(self, texts: Sequence[str], *, truncate: bool = False,
                          prompt_name: str | None = None, dimensions: int | None = None,
                          chunking: bool | None = None,
                          chunk_overlap: int | None = None) -> EmbeddingResult:
        """`chunking` None: the server's default (never where `truncate` is asked)."""
        prompt = self._admit(len(texts), prompt_name, dimensions)
        if chunking_on(chunking, truncate, self.config.chunk_long_inputs):
            return await self._embed_chunked([prompt + t for t in texts], chunk_overlap,
                                             dimensions)
        work = await self._embedding().prepare_texts(texts, prompt, self._truncate(truncate),
                                                     self.stages)
        return await self._run(work, len(texts), dimensions)

    async def _embed_chunked(self, texts: Sequence[str], overlap: int | None,
                             dimensions: int | None) -> EmbeddingResult:
        """Texts past the maximum as overlapping chunks, rows of the ordinary batches,
        pooled per text (runtime/pipeline/chunking.py)."""
        if not self.adapter.can(Capability.PLAIN_TEXT_ROWS):
            raise InvalidRequestError("Chunking needs a text model whose texts are their own "
                                      "tokens; this model's go through a template.",
                                      param="chunking", code="unsupported_parameter")
        chunker = chunker_for(self.tokenizer, (self.config.chunk_overlap
                                                        if overlap is None else overlap))
        rows = await self.stages.encode(texts)
        pieces = await self.stages.in_pool(split_long, chunker, self.tokenizer, texts, rows)
        flat = [row for piece in pieces for row in piece]
        self.batcher.admit(len(flat))  # the queue takes rows: every chunk is one (else 429)
        result = await self._run(Work({self.adapter.towers[0].name: flat}), len(flat), None)
        vectors = pool(result.vectors, pieces, self.spec.normalize)
        return replace(self._finish(vectors, result.prompt_tokens, dimensions),
                       chunks=len(flat))

    async def embed_tokens(self, rows: Sequence[Sequence[int]], *, truncate: bool = False,
                           dimensions: int | None = None) -> EmbeddingResult:
        """Token ids are used as given (no prompt), on the token tower."""
        self._admit(len(rows), None, dimensions)
        checked = self.tokenizer.check_ids(rows, self._truncate(truncate))
        return await self._run(Work({self.adapter.towers[0].name: checked}), len(rows),
                               dimensions)

    async def embed_planned(self, rows: Sequence[Sequence[int]], *,
                            truncate: bool = False) -> EmbeddingResult:
        """embed_tokens for a bulk caller: the rows are planned once, as one set, and run
        past the batcher's queue (Batcher.run_planned): the same rows give the same
        batches, and so the same bytes, however many batches run at once."""
        self._embedding()
        checked = self.tokenizer.check_ids(rows, self._truncate(truncate))
        return await self._run(Work({self.adapter.towers[0].name: checked}), len(rows),
                               None, planned=True)

    async def embed_items(self, items: Sequence[Any], *, truncate: bool = False,
                          prompt_name: str | None = None,
                          dimensions: int | None = None) -> EmbeddingResult:
        """`{text, image}` items, checked against the spec's modalities."""
        prompt = self._admit(len(items), prompt_name, dimensions)
        check_items(self.spec, items)
        work = await self._embedding().prepare(items, prompt, self._truncate(truncate),
                                                self.stages)
        return await self._run(work, len(items), dimensions)

    async def rerank(self, query: str, documents: Sequence[str], *, truncate: bool = True,
                     raw_scores: bool = False, instruct: str | None = None) -> RerankResult:
        """A reranker's score per (query, document) pair, in document order: the pairs are
        rows of the same token-budget batcher, so one request's documents may spread over
        several batches. `truncate` cuts over-long documents (never the query); else 400.
        The spec's activation is applied unless `raw_scores`; `instruct` replaces the
        default instruction of rerankers that take one (Qwen3-Reranker)."""
        scoring = self._scoring()
        self.batcher.admit(len(documents))
        work = await scoring.prepare_pairs(query, documents, truncate, self.stages, instruct)
        result = await self._run(work, len(documents), None)
        logits = result.vectors[:, 0]
        if not raw_scores and self.spec.score_activation == "sigmoid":
            logits = 1.0 / (1.0 + np.exp(-logits))
        return RerankResult(logits.astype(np.float32), result.prompt_tokens)

    async def classify(self, texts: Sequence[str], *, truncate: bool = False) -> RerankResult:
        """A sequence-classification model's raw class logit per text (cross-encoders: each
        text alone, as SGLang's /classify runs it); other models: 400 saying why."""
        if not (self.adapter.can(Capability.CLASSIFY)
                and isinstance(self.adapter, CrossEncoderAdapter)):
            kind = ("a reranker that scores (query, document) pairs: POST /v1/rerank"
                    if self.adapter.can(Capability.SCORE_PAIRS) else "an embedding model: its "
                    "vector is at /encode and /v1/embeddings")
            raise InvalidRequestError(
                f"/classify answers a sequence-classification model's class logits; this "
                f"model is {kind}.", param="model", code="unsupported_model")
        self.batcher.admit(len(texts))
        work = await self.adapter.prepare_single(texts, self._truncate(truncate), self.stages)
        result = await self._run(work, len(texts), None)
        return RerankResult(result.vectors[:, 0].astype(np.float32), result.prompt_tokens)

    def _embedding(self) -> Embedding:
        """The adapter, where it embeds; a reranker: 400."""
        if isinstance(self.adapter, Embedding):
            if not self.adapter.can(Capability.EMBED_TEXT):  # SPLADE, ColBERT: no dense
                gives = [o.value for o in getattr(self.adapter, "outputs", ())]
                raise InvalidRequestError(
                    f"This model has no dense vectors; it gives {', '.join(gives)}: send "
                    f"\"output\": \"{gives[0]}\" to /v1/embeddings (TEI: POST /embed_sparse "
                    "for sparse, /embed_all for multi_vector).",
                    param="output", code="unsupported_output")
            return self.adapter
        raise InvalidRequestError(
            "This model is a reranker: it scores (query, document) pairs and has no "
            "embeddings. POST /v1/rerank instead.", param="model", code="unsupported_model")

    def _scoring(self) -> PairScoring:
        """The adapter, where it scores pairs; an embedding model: 400."""
        if isinstance(self.adapter, PairScoring):
            return self.adapter
        raise InvalidRequestError(
            "This model is an embedding model and does not rerank: compare the "
            "/v1/embeddings vectors of the query and the documents instead.",
            param="model", code="unsupported_model")

    def _admit(self, count: int, prompt_name: str | None, dimensions: int | None) -> str:
        """Checks that need no work, then admission (overloaded: 429 before any work); the
        prompt to prepend."""
        self._embedding()
        check_dimensions(self.spec, dimensions)
        self.batcher.admit(count)
        return prompt_for(self.spec, prompt_name)

    def _truncate(self, requested: bool) -> bool:
        return requested or self.config.allow_auto_truncate

    async def _run(self, work: Work, count: int, dimensions: int | None,
                   planned: bool = False) -> EmbeddingResult:
        outputs = await self.run_work(work, planned)
        vectors = self.adapter.combine(work, outputs, count)
        return self._finish(vectors, work.tokens, dimensions)

    async def run_work(self, work: Work, planned: bool = False) -> dict[str, Any]:
        """A prepared request's rows through their towers' batchers (`planned`: a bulk
        chunk, past the queue) -> each tower's per-row results, in row order."""
        tokens = work.tokens
        if tokens > self.config.max_request_tokens:
            raise InvalidRequestError(
                f"The request has {tokens} tokens in all; at most "
                f"{self.config.max_request_tokens} are allowed per request. Split it.",
                param="input", code="too_many_tokens")
        towers = [tower for tower, rows in work.rows.items() if rows]

        def run(tower: str) -> Awaitable[np.ndarray]:  # planned: a bulk chunk, past the queue
            batcher = self.batchers[tower]
            return (batcher.run_planned if planned else batcher.submit)(work.rows[tower])

        if len(towers) == 1:  # the common case: no gather (a task each costs loop time)
            outputs = [await run(towers[0])]
        else:
            outputs = await asyncio.gather(*(run(t) for t in towers))
        return dict(zip(towers, outputs))

    def _finish(self, vectors: np.ndarray, tokens: int, dimensions: int | None
                ) -> EmbeddingResult:
        """Matryoshka truncation (checked earlier) and renormalisation, then the result."""
        if dimensions is not None and dimensions != vectors.shape[1]:
            vectors = vectors[:, :dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return EmbeddingResult(np.ascontiguousarray(vectors, dtype=np.float32), tokens)

    def prompt_text(self, prompt_name: str | None) -> str:
        """The text a request's prompt_name prepends (the default prompt for None)."""
        return prompt_for(self.spec, prompt_name)
