"""A checkpoint's tokens by id, read from its tokenizer files (json only): the special tokens
a family names (bge-m3's dropped ids, ColBERT's markers and skiplist) become ids at build
time, so the runtime never looks them up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.checkpoint import CheckpointInfo


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def vocabulary(info: CheckpointInfo) -> dict[str, int]:
    """token -> id from tokenizer.json: the model's vocabulary and its added tokens."""
    tokenizer = read_json(info.path / "tokenizer.json")
    vocab = (tokenizer.get("model") or {}).get("vocab")
    ids: dict[str, int] = {}
    if isinstance(vocab, dict):  # WordPiece, BPE
        ids = {str(k): int(v) for k, v in vocab.items()}
    elif isinstance(vocab, list):  # Unigram (XLM-R's sentencepiece): [piece, score] pairs
        ids = {str(piece[0]): i for i, piece in enumerate(vocab)}
    ids.update({t["content"]: int(t["id"]) for t in tokenizer.get("added_tokens", [])})
    return ids


def named_token(info: CheckpointInfo, key: str) -> str | None:
    """A special token's text by its tokenizer-config name (cls_token, mask_token, ...)."""
    named = {**read_json(info.path / "special_tokens_map.json"), **info.tokenizer_config}
    token = named.get(key)
    content = token.get("content") if isinstance(token, dict) else token
    return content if isinstance(content, str) else None
