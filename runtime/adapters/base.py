"""The family adapter contract: how a family's items become tower rows, and rows vectors.

The pipeline (runtime/pipeline/embedder.py) is the same for every family: admission, prompts,
dimensions, tokenising, one token-budget Batcher per tower, usage. An adapter holds what
differs: the towers (graphs) it runs, `prepare` (items -> rows per tower; it may run a
tower first, as GME's vision tower feeds its language tower), `feeds` (one batch of a
tower's rows -> the graph's named inputs), `split` (the graph's output -> one result per
row) and `combine` (tower outputs -> one vector per item, in input order). The pattern is
Infinity's pre/core/post stages per engine and TEI's one backend trait.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping, Protocol, Sequence, TypeVar

import numpy as np
from PIL import Image

from models.spec import ModelSpec
from runtime.artifact import Artifact
from runtime.backends.base import pad_batch
from runtime.tokenizer import TextTokenizer

TEXT = "text"  # the tower that takes token rows (text, or GME's language model)
IMAGE = "image"
A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class Tower:
    """One graph of the artifact, with its own batcher (limits: runtime/pipeline/limits.py)."""

    name: str


@dataclass(frozen=True)
class Item:
    """A `{text, image}` item, as the server's MultimodalItem; for plain strings."""

    text: str | None = None
    image: str | None = None


class CostedRow:
    """A row that is not token ids (an image): len() is its cost in the token budget."""

    def __init__(self, data: Any, tokens: int):
        self.data = data
        self.tokens = tokens

    def __len__(self) -> int:
        return self.tokens


@dataclass(frozen=True)
class Work:
    """One request's rows per tower, and the item each row answers (slots None: one tower
    whose rows are the items, in order)."""

    rows: Mapping[str, Sequence[Any]]
    slots: Mapping[str, Sequence[int]] | None = None

    @property
    def tokens(self) -> int:
        """What the request is charged (usage) and limited by: every row's len()."""
        return sum(len(row) for rows in self.rows.values() for row in rows)


class Stages(Protocol):
    """What the pipeline lends an adapter while it prepares one request."""

    async def tokenize(self, texts: Sequence[str], truncate: bool) -> list[list[int]]: ...

    async def tokenize_pairs(self, query: str, documents: Sequence[str],
                             truncate: bool) -> list[tuple[list[int], list[int]]]: ...

    async def load_images(self, sources: Sequence[str]) -> list[Image.Image]: ...

    async def off_loop(self, fn: Callable[[A], R], args: Sequence[A]) -> list[R]: ...

    async def submit(self, tower: str, rows: Sequence[Any]) -> Any: ...


class Capability(Enum):
    """What an adapter can do: the pipeline and the routes ask this, never the kind."""

    EMBED_TEXT = "embed text"
    EMBED_IMAGES = "embed images"
    SCORE_PAIRS = "score (query, document) pairs"
    CLASSIFY = "classify a text alone (class logits)"
    TRUNCATE_LEFT = "cut a text's start, keeping its end (TEI truncation_direction Left)"
    # A text's rows are its own tokens, no template around them: token ids embed as the
    # text does (the bulk command tokenises itself; GME's texts go through its template).
    PLAIN_TEXT_ROWS = "a text's rows are its own tokens"
    SPARSE = "sparse weights per vocabulary entry (SPLADE, bge-m3's lexical weights)"
    MULTI_VECTOR = "one vector per token (ColBERT-style late interaction)"


class Adapter(ABC):
    """What every family kind shares: its towers and how a batch of rows becomes graph
    inputs and results. Embedding and PairScoring say how requests become rows."""

    towers: tuple[Tower, ...] = (Tower(TEXT),)  # the first takes token-id inputs
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self, artifact: Artifact, tokenizer: TextTokenizer):
        self.spec: ModelSpec = artifact.spec
        self.tokenizer = tokenizer

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def feeds(self, tower: str, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        """One batch of token rows -> right-padded ids and mask."""
        ids, mask = pad_batch(rows)
        return {"input_ids": ids, "attention_mask": mask}

    def split(self, tower: str, rows: Sequence[Any], output: np.ndarray) -> Any:
        """The graph's output -> one result per row (a vector each, for pooled graphs)."""
        return output

    def combine(self, work: Work, outputs: Mapping[str, np.ndarray], count: int) -> np.ndarray:
        """Tower outputs -> (count, dims) vectors in input order."""
        if work.slots is None:
            (output,) = outputs.values()
            return output
        out = np.zeros((count, self.spec.dims), dtype=np.float32)
        for tower, output in outputs.items():
            out[list(work.slots[tower])] = output
        return out

    def probe_row(self, tokens: int) -> Any:
        """A row of `tokens` pad ids for the token tower, to time the backend with."""
        return [0] * tokens

    async def warm_up(self, stages: Stages) -> None:
        """A small batch through the token tower: the first ORT run allocates its arenas."""
        await stages.submit(self.towers[0].name, [[0, 0]])


class Embedding(Adapter):
    """Families that embed: items (texts, images) -> vectors."""

    capabilities = frozenset({Capability.EMBED_TEXT})

    async def prepare_texts(self, texts: Sequence[str], prompt: str, truncate: bool,
                            stages: Stages) -> Work:
        """Plain strings: the prompt prepended, one token row each."""
        if prompt:
            texts = [prompt + t for t in texts]
        return Work({TEXT: await stages.tokenize(texts, truncate)})

    @abstractmethod
    async def prepare(self, items: Sequence[Any], prompt: str, truncate: bool,
                      stages: Stages) -> Work:
        """`{text, image}` items (the pipeline has checked them against the spec) -> rows."""


class PairScoring(Adapter):
    """Rerankers: (query, document) pairs -> one score each."""

    capabilities = frozenset({Capability.SCORE_PAIRS})

    @abstractmethod
    async def prepare_pairs(self, query: str, documents: Sequence[str], truncate: bool,
                            stages: Stages, instruction: str | None = None) -> Work:
        """One row per pair; `instruction` replaces the default of rerankers that take one."""
