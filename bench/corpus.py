"""The benchmark corpus: real English news sentences, offline.

gensim's wheel ships the Lee background corpus (300 Australian Broadcasting Corporation
news articles, `gensim/test/test_data/lee_background.cor`) as test data. We only read that
file (gensim itself is never imported) and split it into sentences of mixed length.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from runtime.errors import MissingDependencyError

# A sentence ends at . ! or ? (a closing quote stays with it) before a space and a capital;
# "U.S. officials" style abbreviations are rare enough in this corpus not to matter.
_SPLIT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"']))\s+(?=[\"'A-Z])")
MIN_CHARS = 12  # drops splitting debris such as lone initials


def corpus_file() -> Path:
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the benchmark corpus ships in gensim's wheel: pip install -e '.[bench]'")
    path = Path(spec.submodule_search_locations[0]) / "test" / "test_data" / "lee_background.cor"
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing; reinstall with pip install -e '.[bench]'")
    return path


def split_sentences(text: str) -> list[str]:
    """One document -> its sentences, whitespace collapsed, debris dropped."""
    text = " ".join(text.split())
    return [s.strip() for s in _SPLIT.split(text) if len(s.strip()) >= MIN_CHARS]


def load_sentences(limit: int | None = None) -> list[str]:
    """Every distinct sentence in corpus order (the first `limit` when given)."""
    seen: dict[str, None] = {}
    for line in corpus_file().read_text(encoding="utf-8").splitlines():
        for sentence in split_sentences(line):
            seen.setdefault(sentence, None)
    sentences = list(seen)
    return sentences[:limit] if limit else sentences
