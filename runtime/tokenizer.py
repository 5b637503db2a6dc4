"""Tokenisation with HF `tokenizers` (no transformers): prompts, truncation, token-id checks.

The builder saves the model's own fast tokenizer (with its post-processor, so special
tokens such as BERT's [CLS]/[SEP] or Qwen3's trailing EOS are added exactly as the
reference does) with padding and truncation switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from runtime.errors import ArtifactError, InvalidRequestError


class TextTokenizer:
    def __init__(self, path: str | Path, max_len: int):
        from tokenizers import Tokenizer

        try:
            self._plain = Tokenizer.from_file(str(path))
            self._truncating = Tokenizer.from_file(str(path))
            self._keep_end = Tokenizer.from_file(str(path))
            self._only_second = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ArtifactError(f"cannot load tokenizer {path}: {exc}") from exc
        self._plain.no_padding()
        self._plain.no_truncation()
        self._truncating.no_padding()
        self._truncating.enable_truncation(max_len)
        self._keep_end.no_padding()
        self._keep_end.enable_truncation(max_len, direction="left")
        self._only_second.no_padding()  # rerank pairs: the document is cut, never the query
        self._only_second.enable_truncation(max_len, strategy="only_second")
        self.max_len = max_len
        self.vocab_size = self._plain.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: Sequence[str], truncate: bool) -> list[list[int]]:
        """Token ids per text, special tokens included; too long -> 400 unless truncating."""
        return self.fit(texts, self.encode_raw(texts), truncate)

    def encode_raw(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, special tokens included, whatever their length."""
        # _fast: no character offsets (unused here); the same ids in less time per call.
        return [e.ids for e in self._plain.encode_batch_fast(list(texts),
                                                             add_special_tokens=True)]

    def fit(self, texts: Sequence[str], rows: list[list[int]], truncate: bool
            ) -> list[list[int]]:
        """encode_raw's rows of `texts` within the maximum: 400 for the first too long
        unless truncating, which re-encodes those texts cut to the maximum."""
        too_long = [i for i, row in enumerate(rows) if len(row) > self.max_len]
        if too_long and not truncate:
            raise _too_long(too_long[0], len(rows[too_long[0]]), self.max_len)
        if too_long:
            cut = self._truncating.encode_batch_fast([texts[i] for i in too_long],
                                                     add_special_tokens=True)
            for i, enc in zip(too_long, cut):
                rows[i] = enc.ids
        return rows

    def encode_pairs(self, query: str, documents: Sequence[str], truncate: bool
                     ) -> list[tuple[list[int], list[int]]]:
        """(ids, token type ids) per (query, document) pair, through the model's own pair
        template; too long -> 400 unless truncating, which cuts the document only."""
        pairs = [(query, d) for d in documents]
        encodings = self._plain.encode_batch_fast(pairs, add_special_tokens=True)
        rows = [(e.ids, e.type_ids) for e in encodings]
        too_long = [i for i, (ids, _) in enumerate(rows) if len(ids) > self.max_len]
        if too_long and not truncate:
            raise InvalidRequestError(
                f"documents[{too_long[0]}] with the query has {len(rows[too_long[0]][0])} "
                f"tokens, more than this model's maximum of {self.max_len}. Shorten it, or "
                "let the server truncate documents.", param="documents",
                code="context_length_exceeded")
        if too_long:
            try:
                cut = self._only_second.encode_batch_fast([pairs[i] for i in too_long],
                                                          add_special_tokens=True)
            except Exception as exc:  # tokenizers: the query alone leaves no room
                raise InvalidRequestError(
                    f"The query leaves no room for a document within this model's maximum "
                    f"of {self.max_len} tokens; the query is never truncated. Shorten it.",
                    param="query", code="context_length_exceeded") from exc
            for i, enc in zip(too_long, cut):
                rows[i] = (enc.ids, enc.type_ids)
        return rows

    def encode_keeping_end(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids cut to the maximum from the left (TEI's truncation_direction Left):
        the end of a long text is kept; special tokens are added after the cut."""
        return [e.ids for e in self._keep_end.encode_batch_fast(list(texts),
                                                                add_special_tokens=True)]

    def ids(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
        """Token ids as they are, never checked against the maximum (/tokenize)."""
        return [e.ids for e in self._plain.encode_batch_fast(list(texts),
                                                             add_special_tokens=add_special_tokens)]

    def decode(self, rows: Sequence[Sequence[int]], skip_special_tokens: bool = True) -> list[str]:
        """Ids -> text (/detokenize); an id outside the vocabulary is a 400."""
        for i, row in enumerate(rows):
            if any(t < 0 or t >= self.vocab_size for t in row):
                raise InvalidRequestError(
                    f"tokens[{i}] has ids outside [0, {self.vocab_size}).", param="tokens",
                    code="invalid_token_id")
        return self._plain.decode_batch([list(r) for r in rows],
                                        skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int | None:
        """A special token's id (GME's <|image_pad|>), None when the vocabulary lacks it."""
        return self._plain.token_to_id(token)

    def check_ids(self, rows: Sequence[Sequence[int]], truncate: bool) -> list[list[int]]:
        """Token-id inputs are used as given: checked against the vocabulary and max length."""
        out: list[list[int]] = []
        for i, row in enumerate(rows):
            # min/max run in C; the scan for the culprit only when there is one.
            bad = (next(t for t in row if t < 0 or t >= self.vocab_size)
                   if min(row) < 0 or max(row) >= self.vocab_size else None)
            if bad is not None:
                raise InvalidRequestError(
                    f"Invalid token id {bad} in input[{i}]: ids must be in [0, {self.vocab_size}).",
                    param="input",
                    code="invalid_token_id",
                )
            if len(row) > self.max_len:
                if not truncate:
                    raise _too_long(i, len(row), self.max_len)
                row = row[: self.max_len]
            out.append(list(row))
        return out


def _too_long(index: int, length: int, max_len: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"input[{index}] has {length} tokens, more than this model's maximum of {max_len}. "
        "Shorten it, or send \"truncate\": true to cut it to the maximum.",
        param="input",
        code="context_length_exceeded",
    )
