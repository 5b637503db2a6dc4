"""The checkpoint's Hugging Face tokenizer, loaded the way its family requires.

One place for the builder (which saves tokenizer.json for the runtime) and the reference
(sentence-transformers), so both tokenise identically. Imported by the builder only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.spec import ModelSpec


def tokenizer_kwargs(path: str | Path, spec: ModelSpec) -> dict[str, bool]:
    """Extra AutoTokenizer kwargs: force a trailing EOS where the spec requires one.

    Setting add_eos_token rebuilds the post-processor from add_bos_token as well, so the
    BOS the tokenizer adds today is passed explicitly or it would be lost.
    """
    if not spec.append_eos:
        return {}
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    ids = tokenizer("a")["input_ids"]
    if ids and ids[-1] == tokenizer.eos_token_id:
        return {}
    bos = tokenizer.bos_token_id
    return {"add_bos_token": bool(ids) and bos is not None and ids[0] == bos,
            "add_eos_token": True}


def load_tokenizer(path: str | Path, spec: ModelSpec | None = None) -> Any:
    from transformers import AutoTokenizer

    kwargs = tokenizer_kwargs(path, spec) if spec is not None else {}
    return AutoTokenizer.from_pretrained(str(path), **kwargs)
