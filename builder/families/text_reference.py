"""Reference embeddings from the original implementations, for the builder's parity gate.

sentence-transformers when the checkpoint ships its files (what users run instead of us),
else transformers plus the same pooling the export uses. Imported by the builder only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.spec import ModelSpec


def sentence_transformers_or_pooled(path: str | Path, spec: ModelSpec, texts: list[str],
                                     module: Callable[[], Any]) -> Any:
    """`module`: the family's export module, built only when there are no ST files."""
    if (Path(path) / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
        model.max_seq_length = spec.max_len
        return model.encode(texts, batch_size=16, normalize_embeddings=spec.normalize)
    return transformers_pooled(path, spec, texts, module())


def transformers_pooled(path: str | Path, spec: ModelSpec, texts: list[str],
                        module: Any) -> np.ndarray:
    """transformers' tokenizer and the export module (body + the same pooling), text by text."""
    import torch

    from builder.families.hf_tokenizer import load_tokenizer

    tokenizer = load_tokenizer(path, spec)  # with the EOS the spec requires, as the artifact
    tokenizer.padding_side = "right"
    out = []
    with torch.inference_mode():
        for text in texts:  # one by one: no padding in the reference
            enc = tokenizer([text], truncation=True, max_length=spec.max_len, return_tensors="pt")
            out.append(module(enc["input_ids"], enc["attention_mask"]).numpy()[0])
    return np.stack(out)
