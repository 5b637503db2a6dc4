"""The facade the server calls: tokenise, batch, run the backend, post-process."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from models.spec import ModelSpec
from runtime.backends.base import Backend, pad_batch
from runtime.batcher import DEFAULT_BATCH_TOKENS, Batcher
from runtime.config import RuntimeConfig
from runtime.errors import InvalidRequestError
from runtime.manifest import Manifest
from runtime.backends.choose import load_backend
from runtime.tokenizer import TextTokenizer

log = logging.getLogger(__name__)
INLINE_TOKENIZE_CHARS = 1024  # requests up to this many characters tokenise on the loop


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: np.ndarray  # (n, dims) float32, in input order
    prompt_tokens: int


class Embedder:
    def __init__(self, artifact: str | Path, manifest: Manifest, backend: Backend,
                 config: RuntimeConfig):
        self.artifact = Path(artifact)
        self.manifest = manifest
        self.spec: ModelSpec = manifest.spec
        self.backend = backend
        self.config = config
        self.tokenizer = TextTokenizer(self.artifact / manifest.tokenizer, self.spec.max_len)
        limits = backend.limits
        batch_cfg = replace(config.batch, seq_buckets=limits.seq_buckets or
                            config.batch.seq_buckets,
                            concurrency=max(config.batch.concurrency, limits.concurrency),
                            max_batch_tokens=config.batch.max_batch_tokens or
                            limits.max_batch_tokens or DEFAULT_BATCH_TOKENS)
        self.batcher = Batcher(self._run_batch, batch_cfg)
        self._tok_pool = ThreadPoolExecutor(config.tokenizer_threads, thread_name_prefix="tokenize")

    @classmethod
    def load(cls, artifact: str | Path, config: RuntimeConfig) -> "Embedder":
        manifest = Manifest.load(artifact)
        if "image" in manifest.spec.modalities:  # one backend per tower: runtime.multimodal
            from runtime.multimodal import load_multimodal

            return load_multimodal(artifact, manifest, config)
        backend = load_backend(Path(artifact), manifest, config)
        return cls(artifact, manifest, backend, config)

    def _run_batch(self, rows: list[Sequence[int]]) -> np.ndarray:
        ids, mask = pad_batch(rows)
        return self.backend.embed({"input_ids": ids, "attention_mask": mask})

    async def start(self) -> None:
        self.batcher.start()
        await self.batcher.submit([[0, 0]])  # warm-up: first ORT run allocates its arenas

    async def close(self) -> None:
        await self.batcher.stop()
        self._tok_pool.shutdown(wait=False)
        self.backend.close()

    async def embed_texts(self, texts: Sequence[str], *, truncate: bool = False,
                          prompt_name: str | None = None,
                          dimensions: int | None = None) -> EmbeddingResult:
        self.check_dimensions(dimensions)
        self.batcher.admit(len(texts))  # overloaded: 429 before spending time tokenising
        prompt = self._prompt(prompt_name)
        if prompt:
            texts = [prompt + t for t in texts]
        truncate = truncate or self.config.allow_auto_truncate
        if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
            # A few sentences tokenise in tens of microseconds: a thread hop costs more.
            rows = self.tokenizer.encode(texts, truncate)
        else:
            loop = asyncio.get_running_loop()
            rows = await loop.run_in_executor(self._tok_pool, self.tokenizer.encode, texts,
                                              truncate)
        return await self._embed_rows(rows, dimensions)

    async def embed_tokens(self, rows: Sequence[Sequence[int]], *, truncate: bool = False,
                           dimensions: int | None = None) -> EmbeddingResult:
        self.check_dimensions(dimensions)
        checked = self.tokenizer.check_ids(rows, truncate or self.config.allow_auto_truncate)
        return await self._embed_rows(checked, dimensions)

    async def embed_items(self, items: Sequence, *, truncate: bool = False,
                          prompt_name: str | None = None,
                          dimensions: int | None = None) -> EmbeddingResult:
        """{text, image} items; a text-only model takes text items only."""
        if any(item.image is not None for item in items):
            raise InvalidRequestError("This model does not accept images; send text inputs.",
                                      param="input", code="unsupported_modality")
        return await self.embed_texts([item.text for item in items], truncate=truncate,
                                      prompt_name=prompt_name, dimensions=dimensions)

    async def _embed_rows(self, rows: list[list[int]], dimensions: int | None) -> EmbeddingResult:
        tokens = sum(len(r) for r in rows)
        if tokens > self.config.max_request_tokens:
            raise InvalidRequestError(
                f"The request has {tokens} tokens in all; at most "
                f"{self.config.max_request_tokens} are allowed per request. Split it.",
                param="input", code="too_many_tokens")
        vectors = await self.batcher.submit(rows)
        return self.finish(vectors, tokens, dimensions)

    def finish(self, vectors: np.ndarray, tokens: int, dimensions: int | None) -> EmbeddingResult:
        """Matryoshka truncation (checked earlier) and renormalisation, then the result."""
        if dimensions is not None and dimensions != vectors.shape[1]:
            vectors = vectors[:, :dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return EmbeddingResult(np.ascontiguousarray(vectors, dtype=np.float32), tokens)

    def check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is None:
            return
        if not self.spec.matryoshka:
            raise InvalidRequestError(
                f"This model does not support the 'dimensions' parameter: it was not trained "
                f"for shortened embeddings (its size is {self.spec.dims}).",
                param="dimensions", code="unsupported_parameter")
        if not 1 <= dimensions <= self.spec.dims:
            raise InvalidRequestError(
                f"'dimensions' must be between 1 and {self.spec.dims}, got {dimensions}.",
                param="dimensions", code="invalid_value")

    def _prompt(self, prompt_name: str | None) -> str:
        if prompt_name is None:
            name = self.spec.default_prompt_name
            return (self.spec.prompt(name) or "") if name else ""
        prompt = self.spec.prompt(prompt_name)
        if prompt is None:
            known = ", ".join(name for name, _ in self.spec.prompts) or "none"
            raise InvalidRequestError(
                f"Unknown prompt_name {prompt_name!r}; this model's prompts: {known}.",
                param="prompt_name", code="invalid_value")
        return prompt
