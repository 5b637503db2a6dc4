"""One chunk of input rows -> its output rows (id, vector, tokens) and its rejects.

The core both engines share (runtime/bulk/local.py, runtime/bulk/ray_engine.py): an
Embedder on its own event loop, fed one chunk at a time. Rows are checked first (null, not
text, empty: rejected with the reason), tokenised once with the model's tokenizer (the
token count per row is written out), then embedded with Embedder.embed_tokens: the server's
batcher and backend, the same rows it would run for embed_texts.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from runtime.bulk.deps import require
from runtime.bulk.sources import BadLine, Chunk, InputError
from runtime.config import RuntimeConfig
from runtime.embedder import Embedder
from runtime.errors import InvalidRequestError
from runtime.limits import BatchFlags

COLUMNS = ("id", "vector", "tokens")


@dataclass(frozen=True)
class EmbedSettings:
    """What decides the vectors (and so goes into the job's key), and how they are run."""

    backend: str = "auto"
    threads: int = 0  # 0: every core this process may use, in one session
    max_batch_size: int | None = None
    max_batch_tokens: int | None = None
    truncate: bool = False  # over-long texts: cut to the model's maximum, else rejected
    prompt_name: str | None = None
    trt_contexts: int = 2

    def runtime_config(self, chunk_rows: int) -> RuntimeConfig:
        """One batch in flight on CPU (threads given): a chunk's batches are then the same
        wherever it runs. A chunk is one request: no request token limit, a queue that fits."""
        threads = self.threads or len(os.sched_getaffinity(0))
        flags = BatchFlags(max_batch_size=self.max_batch_size,
                           max_batch_tokens=self.max_batch_tokens, max_wait_ms=0.0,
                           max_queue_rows=max(8192, chunk_rows))
        return RuntimeConfig(backend=self.backend, batch=flags, threads=threads,
                             trt_contexts=self.trt_contexts, max_request_tokens=1 << 62)


@dataclass
class ChunkResult:
    table: Any  # pyarrow.Table with COLUMNS
    rejects: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0


def reject_reason(text: Any) -> str | None:
    """Why a row's text is not embedded; None when it is."""
    if text is None:
        return "null or missing text"
    if isinstance(text, BadLine):
        return f"not a JSON object: {text.start!r}"
    if not isinstance(text, str):
        return f"not text ({type(text).__name__})"
    if not text.strip():
        return "empty text"
    return None


class ChunkEmbedder:
    def __init__(self, artifact: str | Path, settings: EmbedSettings, chunk_rows: int):
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self.embedder = Embedder.load(artifact, settings.runtime_config(chunk_rows))
        if self.embedder.spec.adapter == "vision_language":
            self.close()
            raise InputError("the bulk command embeds text with text-tower models; this "
                             "model's texts go through its vision-language template: use "
                             "the server")
        try:  # the server's own prompt rule: the named one, else the model's default
            self.prompt = self.embedder.prompt_text(settings.prompt_name or None)
        except InvalidRequestError as exc:
            self.close()
            raise InputError(f"--prompt-name: {exc.message}") from exc
        self._loop.run_until_complete(self.embedder.start())
        self.dims = self.embedder.spec.dims

    def embed(self, chunk: Chunk) -> ChunkResult:
        rejects: list[dict[str, Any]] = []
        keep: list[int] = []
        for i, text in enumerate(chunk.texts):
            reason = reject_reason(text)
            if reason is None and chunk.ids[i] is None:
                reason = "null id"
            if reason is None:
                keep.append(i)
            else:
                rejects.append(self._reject(chunk, i, reason))
        rows, keep = self._tokenize(chunk, keep, rejects)
        vectors = (self._loop.run_until_complete(
            self.embedder.embed_tokens(rows, truncate=self.settings.truncate)).vectors
            if rows else None)
        table = self._table([chunk.ids[i] for i in keep], vectors, [len(r) for r in rows])
        ordered = [{k: v for k, v in r.items() if k != "index"}
                   for r in sorted(rejects, key=lambda r: r["index"])]
        return ChunkResult(table, ordered, sum(map(len, rows)))

    def _tokenize(self, chunk: Chunk, keep: list[int], rejects: list[dict[str, Any]]
                  ) -> tuple[list[list[int]], list[int]]:
        """Token rows of the kept texts; an over-long text (not truncating) is rejected."""
        tokenizer, truncate = self.embedder.tokenizer, self.settings.truncate
        texts = [self.prompt + chunk.texts[i] for i in keep]
        try:
            return tokenizer.encode(texts, truncate), keep
        except InvalidRequestError:  # some text is too long: find which, one at a time
            rows, kept = [], []
            for i, text in zip(keep, texts):
                try:
                    rows.append(tokenizer.encode([text], truncate)[0])
                    kept.append(i)
                except InvalidRequestError as exc:
                    rejects.append(self._reject(chunk, i, f"too long: {exc.message}"))
            return rows, kept

    @staticmethod
    def _reject(chunk: Chunk, i: int, reason: str) -> dict[str, Any]:
        return {"index": i, "row": chunk.start + i, "id": chunk.ids[i], "reason": reason}

    def _table(self, ids: Sequence[Any], vectors: Any, tokens: list[int]) -> Any:
        pa = require("pyarrow")
        flat = (pa.array(vectors.reshape(-1), pa.float32()) if vectors is not None
                else pa.array([], pa.float32()))
        return pa.table({"id": pa.array(list(ids)),
                         "vector": pa.FixedSizeListArray.from_arrays(flat, self.dims),
                         "tokens": pa.array(tokens, pa.int32())})

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.embedder.close())
            self._loop.close()
