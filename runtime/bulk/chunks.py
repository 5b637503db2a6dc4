"""One chunk of input rows -> its output rows (id, the output's columns, tokens) and its
rejects (runtime/bulk/columns.py: a dense vector in each asked type, sparse weights or token
vectors).

The core both engines share (runtime/bulk/local.py, runtime/bulk/ray_engine.py): an
Embedder on its own event loop, fed one chunk at a time. Rows are checked first (null, not
text, empty: rejected with the reason), tokenised once with the model's tokenizer (the
token count per row is written out), then embedded with Embedder.embed_planned: the
server's backend and batch limits, the chunk's rows planned once into batches (a pure
function of the rows: the same bytes on every engine) and run `threads` at a time.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from runtime.bulk.columns import part_table
from runtime.bulk.sources import BadLine, Chunk, InputError
from runtime.config import RuntimeConfig
from runtime.adapters.base import Capability
from runtime.adapters.heads import Output
from runtime.pipeline.embedder import Embedder, EmbeddingResult
from runtime.pipeline.heads import embed_output, resolve_output
from runtime.errors import InvalidRequestError
from runtime.pipeline import chunking
from runtime.pipeline.limits import BatchFlags
from runtime.quantization import FLOAT


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
    embedding_types: tuple[str, ...] = (FLOAT,)  # the vector columns (runtime/bulk/columns.py)
    chunking: bool = False  # over-long texts: chunked and pooled (runtime/pipeline/chunking.py)
    chunk_overlap: int | None = None
    output: str | None = None  # dense, sparse or multi_vector; None: the model's first

    def runtime_config(self, chunk_rows: int) -> RuntimeConfig:
        """`threads` one-thread batches at once on CPU (faster than one batch on every
        thread: BENCHMARKS.md, bulk), each within the one-thread budget; the batches are
        the plan of the chunk's rows (Embedder.embed_planned), the same wherever it runs.
        A chunk is one request: no request token limit, a queue that fits."""
        threads = self.threads or len(os.sched_getaffinity(0))
        flags = BatchFlags(max_batch_size=self.max_batch_size,
                           max_batch_tokens=self.max_batch_tokens, concurrency=threads,
                           max_wait_ms=0.0, max_queue_rows=max(8192, chunk_rows))
        return RuntimeConfig(backend=self.backend, batch=flags, threads=1,
                             trt_contexts=self.trt_contexts, max_request_tokens=1 << 62)


@dataclass
class ChunkResult:
    table: Any  # pyarrow.Table (runtime/bulk/columns.py)
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


@dataclass
class Running:
    """A chunk whose batches are queued or running; result() waits for them."""

    chunk: Chunk
    keep: list[int]  # the chunk's rows that are embedded
    pieces: chunking.Pieces  # their token rows: one each, or their chunks
    rejects: list[dict[str, Any]]
    future: Future | None  # the outputs, a row per piece; None: no row to embed
    table: Callable[[Sequence[Any], Any, chunking.Pieces], Any]

    def result(self) -> ChunkResult:
        done = self.future.result() if self.future is not None else None
        outputs = (done.vectors if isinstance(done, EmbeddingResult)  # dense
                   else None if done is None else done.rows)  # sparse or token vectors
        table = self.table([self.chunk.ids[i] for i in self.keep], outputs, self.pieces)
        ordered = [{k: v for k, v in r.items() if k != "index"}
                   for r in sorted(self.rejects, key=lambda r: r["index"])]
        return ChunkResult(table, ordered, sum(len(r) for p in self.pieces for r in p))


class ChunkEmbedder:
    """The Embedder on an event loop of its own thread: submit() checks and tokenises a chunk
    and queues its batches behind the previous chunk's, so the caller can tokenise the next
    chunk and write the last one while the backend works (the cores never wait for them)."""

    def __init__(self, artifact: str | Path, settings: EmbedSettings, chunk_rows: int):
        self.settings = settings
        self.embedder = Embedder.load(artifact, settings.runtime_config(chunk_rows))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bulk-loop",
                                        daemon=True)
        self._thread.start()
        if not self.embedder.adapter.can(Capability.PLAIN_TEXT_ROWS):
            self.close()
            raise InputError("the bulk command embeds text with text-tower models; this "
                             "model's texts go through its vision-language template: use "
                             "the server")
        try:  # the server's own prompt rule: the named one, else the model's default
            self.prompt = self.embedder.prompt_text(settings.prompt_name or None)
            self.output = resolve_output(self.embedder, settings.output)
        except InvalidRequestError as exc:
            self.close()
            flag = "--embedding-output" if exc.param == "output" else "--prompt-name"
            raise InputError(f"{flag}: {exc.message}") from exc
        try:
            _dense_only(self.output, settings)
            self.embedder.quantizer.check(settings.embedding_types, "embedding_types")
            self.chunker = (chunking.chunker_for(self.embedder.tokenizer, settings.chunk_overlap)
                            if settings.chunking else None)
        except InvalidRequestError as exc:
            self.close()
            raise InputError(f"--{(exc.param or '').replace('_', '-')}: {exc.message}") from exc
        self._call(self.embedder.start()).result()
        self.dims = self.embedder.spec.dims

    @staticmethod
    async def _cancel_pending() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _call(self, coro: Any) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def embed(self, chunk: Chunk) -> ChunkResult:
        return self.submit(chunk).result()

    def submit(self, chunk: Chunk) -> Running:
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
        pieces, keep = self._tokenize(chunk, keep, rejects)
        rows = [row for piece in pieces for row in piece]
        future = self._call(self._embed(rows)) if rows else None
        return Running(chunk, keep, pieces, rejects, future, self._table)

    def _embed(self, rows: list[list[int]]) -> Any:
        truncate = self.settings.truncate
        if self.output is Output.DENSE:
            return self.embedder.embed_planned(rows, truncate=truncate)
        # The prompt's text is in the rows already; its name still picks ColBERT's marker.
        return embed_output(self.embedder, rows, self.output, tokens=True, truncate=truncate,
                            prompt_name=self.settings.prompt_name, planned=True)

    def _tokenize(self, chunk: Chunk, keep: list[int], rejects: list[dict[str, Any]]
                  ) -> tuple[chunking.Pieces, list[int]]:
        """Token rows of the kept texts (chunking: an over-long text's chunks); an
        over-long text (neither truncating nor chunking) is rejected."""
        tokenizer, truncate = self.embedder.tokenizer, self.settings.truncate
        texts = [self.prompt + chunk.texts[i] for i in keep]
        if self.chunker is not None:
            return chunking.split_long(self.chunker, tokenizer, texts,
                                       tokenizer.encode_raw(texts)), keep
        try:
            return [[row] for row in tokenizer.encode(texts, truncate)], keep
        except InvalidRequestError:  # some text is too long: find which, one at a time
            rows, kept = [], []
            for i, text in zip(keep, texts):
                try:
                    rows.append([tokenizer.encode([text], truncate)[0]])
                    kept.append(i)
                except InvalidRequestError as exc:
                    rejects.append(self._reject(chunk, i, f"too long: {exc.message}"))
            return rows, kept

    @staticmethod
    def _reject(chunk: Chunk, i: int, reason: str) -> dict[str, Any]:
        return {"index": i, "row": chunk.start + i, "id": chunk.ids[i], "reason": reason}

    def _table(self, ids: Sequence[Any], outputs: Any, pieces: chunking.Pieces) -> Any:
        """The part's table; dense chunk vectors pooled per row first."""
        if outputs is not None and self.chunker is not None:
            outputs = chunking.pool(outputs, pieces, self.embedder.spec.normalize)
        dims = self.dims
        if self.output is Output.MULTI_VECTOR:  # token vectors: ColBERT's width
            dims = self.embedder.spec.colbert_dims or self.dims
        return part_table(ids, self.output, outputs, pieces, dims, self.settings.embedding_types,
                          self.embedder.quantizer, self.chunker is not None)

    def close(self) -> None:
        if not self._loop.is_closed():
            self._call(self._cancel_pending()).result()  # chunks left queued by a Ctrl-C
            self._call(self.embedder.close()).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


def _dense_only(output: Output, settings: EmbedSettings) -> None:
    """Quantized types and chunk pooling are defined on dense vectors only."""
    if output is Output.DENSE:
        return
    if tuple(settings.embedding_types) != (FLOAT,):
        raise InvalidRequestError(f"quantized types are for dense vectors, not {output.value} "
                                  "output", param="embedding_types")
    if settings.chunking:
        raise InvalidRequestError(f"chunked inputs pool dense vectors, not {output.value} "
                                  "output", param="chunk_long_inputs")
