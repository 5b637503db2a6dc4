"""Sparse and multi-vector requests (runtime/adapters/heads.py): the embedding pipeline's
admission, prompt, tokenising and batchers, then the adapter's `select` instead of the
dense `combine`. Dense requests keep their own path (runtime/pipeline/embedder.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Sequence

from runtime.adapters.base import TEXT, Embedding, Work
from runtime.adapters.heads import HeadsAdapter, Output
from runtime.errors import InvalidRequestError
from runtime.pipeline.embedder import Embedder

OUTPUT_NAMES = tuple(o.value for o in Output)
INLINE_SELECT_TOKENS = 2048  # ~0.13 ms of numpy, about what a hop to a thread costs


@dataclass(frozen=True)
class HeadsResult:
    output: Output
    rows: list[Any]  # one per input, in order: SparseVector, or a (tokens, dims) array
    prompt_tokens: int


def outputs_of(emb: Embedder) -> tuple[Output, ...]:
    """What the served model gives: its heads' outputs, else one dense vector."""
    adapter = emb.adapter
    return adapter.outputs if isinstance(adapter, HeadsAdapter) else (Output.DENSE,)


def resolve_output(emb: Embedder, requested: str | None) -> Output:
    """The output a request gets: the one it names, else the model's first (dense where
    it has one, SPLADE's sparse weights); one the model lacks is a 400."""
    offered = outputs_of(emb)
    if requested is None:
        return offered[0]
    if not isinstance(emb.adapter, Embedding) and requested != Output.DENSE.value:
        raise InvalidRequestError(  # plain or dense: the dense path says what it is
            f"This model is a reranker: it has no {requested} output, nor embeddings. POST "
            "/v1/rerank instead.", param="output", code="unsupported_output")
    if requested not in OUTPUT_NAMES:
        raise InvalidRequestError(f"'output' must be one of {list(OUTPUT_NAMES)}, got "
                                  f"{requested!r}.", param="output", code="invalid_value")
    output = Output(requested)
    if output not in offered:
        raise InvalidRequestError(
            f"This model has no {output.value} output; it gives "
            f"{', '.join(o.value for o in offered)}.", param="output", code="unsupported_output")
    return output


async def embed_output(emb: Embedder, inputs: Sequence[Any], output: Output, *,
                       tokens: bool = False, truncate: bool = False,
                       prompt_name: str | None = None, planned: bool = False) -> HeadsResult:
    """Texts (or token-id rows, used as given) -> each input's `output`. `planned`: a bulk
    chunk (Embedder.embed_planned's batching: a pure function of the rows)."""
    resolve_output(emb, output.value)
    adapter = emb.adapter
    assert isinstance(adapter, HeadsAdapter)  # resolve_output offers only dense otherwise
    cut = truncate or emb.config.allow_auto_truncate
    if not planned:
        emb.batcher.admit(len(inputs))  # 429 before any work
    if tokens:
        rows = emb.tokenizer.check_ids(inputs, cut)
    else:
        prompt = emb.prompt_text(prompt_name)
        rows = await emb.stages.tokenize([prompt + text for text in inputs], cut)
    work = Work({TEXT: adapter.shape_rows(rows, prompt_name, cut)})
    results = await emb.run_work(work, planned)
    args = (output, results[TEXT], work.rows[TEXT])
    # bge-m3's per-id max costs ~16 us per 256-token row: a long request's in a thread.
    answers = (adapter.select(*args) if work.tokens <= INLINE_SELECT_TOKENS
               else await asyncio.to_thread(adapter.select, *args))
    return HeadsResult(output, answers, work.tokens)
