"""Chunked long inputs: a text past the model's maximum is split into overlapping chunks,
each embedded as a row of the ordinary batches, and the chunk vectors pooled into one.

- Split: the text's tokens without special tokens, in windows of the model's maximum less
  its special tokens (`width`); consecutive windows share `overlap` tokens (default: an
  eighth of the width, runtime/settings.py DEFAULT_CHUNK_OVERLAP_FRACTION); each window
  gets the model's own special tokens around it (BERT's [CLS] ... [SEP], Qwen's trailing
  <|endoftext|>), as the tokenizer adds them to a whole text. The last window ends at the
  text's end and may be shorter. A prompt is part of the text: the first chunk carries it.
- Pool: the mean of the chunk vectors weighted by each chunk's token count (special tokens
  included, what was embedded), so a short last chunk counts for what it holds; then L2
  renormalised where the model normalises. An input of one chunk is its vector unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from runtime.errors import InvalidRequestError
from runtime.settings import DEFAULT_CHUNK_OVERLAP_FRACTION

Pieces = list[list[list[int]]]  # per input, its chunk rows


class IdTokenizer(Protocol):
    max_len: int

    def ids(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]: ...


@dataclass(frozen=True)
class Chunker:
    prefix: tuple[int, ...]  # special tokens before a text's own
    suffix: tuple[int, ...]  # and after them
    max_len: int
    overlap: int  # tokens consecutive chunks share

    @property
    def width(self) -> int:
        """A chunk's own tokens, special tokens aside."""
        return self.max_len - len(self.prefix) - len(self.suffix)

    def windows(self, length: int) -> list[tuple[int, int]]:
        """[start, end) of each chunk of a text of `length` own tokens."""
        step, out, start = self.width - self.overlap, [], 0
        while True:
            end = min(start + self.width, length)
            out.append((start, end))
            if end >= length:
                return out
            start += step

    def split(self, content: Sequence[int]) -> list[list[int]]:
        """A text's own tokens -> its chunk rows, special tokens added to each."""
        return [[*self.prefix, *content[start:end], *self.suffix]
                for start, end in self.windows(len(content))]


def chunking_on(requested: bool | None, truncate: bool, default: bool) -> bool:
    """Whether a request's over-long texts are chunked: as asked, else the server's default
    unless the request asks to truncate; chunking and truncating both asked: 400."""
    if requested and truncate:
        raise InvalidRequestError("'chunking' and 'truncate' both ask what to do with a long "
                                  "input: send one.", param="chunking", code="invalid_value")
    return default and not truncate if requested is None else requested


def affixes(tokenizer: IdTokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens the tokenizer puts before and after a text's own tokens."""
    probe = "chunk"
    full = tokenizer.ids([probe], True)[0]
    own = tokenizer.ids([probe], False)[0]
    for start in range(len(full) - len(own) + 1):
        if full[start:start + len(own)] == own:
            return tuple(full[:start]), tuple(full[start + len(own):])
    raise ValueError("the tokenizer's special tokens do not surround a text's own tokens")


def chunker_for(tokenizer: IdTokenizer, overlap: int | None) -> Chunker:
    """The model's chunker; `overlap` None: the default fraction of the width; outside
    0..width-1: 400."""
    prefix, suffix = affixes(tokenizer)
    width = tokenizer.max_len - len(prefix) - len(suffix)
    if width < 1:
        raise InvalidRequestError("This model's maximum leaves no room for text beside its "
                                  "special tokens: it cannot chunk.", param="chunking",
                                  code="unsupported_parameter")
    if overlap is None:
        overlap = int(width * DEFAULT_CHUNK_OVERLAP_FRACTION)
    if not 0 <= overlap < width:
        raise InvalidRequestError(
            f"'chunk_overlap' must be between 0 and {width - 1} tokens for this model (a "
            f"chunk holds {width} tokens of text), got {overlap}.", param="chunk_overlap",
            code="invalid_value")
    return Chunker(prefix, suffix, tokenizer.max_len, overlap)


def split_long(chunker: Chunker, tokenizer: IdTokenizer, texts: Sequence[str],
               rows: Sequence[list[int]]) -> Pieces:
    """Each text's rows: its one row (`rows`, special tokens included) where it fits, else
    its chunks."""
    long = [i for i, row in enumerate(rows) if len(row) > chunker.max_len]
    pieces = [[row] for row in rows]
    for i, content in zip(long, tokenizer.ids([texts[i] for i in long], False)):
        pieces[i] = chunker.split(content)
    return pieces


def pool(vectors: np.ndarray, pieces: Pieces, normalize: bool) -> np.ndarray:
    """(chunks, dims) vectors in `pieces` order -> (inputs, dims): the token-weighted mean
    per input, renormalised if `normalize`; a one-chunk input keeps its vector."""
    counts = np.array([len(p) for p in pieces])
    weights = np.array([len(row) for p in pieces for row in p], dtype=np.float64)
    owners = np.repeat(np.arange(len(pieces)), counts)
    sums = np.zeros((len(pieces), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, vectors.astype(np.float64) * weights[:, None])
    pooled = sums / np.bincount(owners, weights)[:, None]
    if normalize:
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    out = pooled.astype(np.float32)
    single = counts == 1
    out[single] = vectors[np.cumsum(counts)[single] - 1]
    return out
