"""Reference embeddings from the original implementations, for the builder's parity gate.

sentence-transformers when the checkpoint ships its files (what users run instead of us),
with its own modules deciding pooling and normalisation: the spec's are what is checked, so
the reference never takes them from the spec. Without those files (decoder families only:
a BERT-like checkpoint without them is refused in models/bert.py) transformers' own model
and the pooling written out here in numpy, apart from the export's torch pooling
(builder/families/pooling.py), so a mistake there is not mirrored here. Imported by the
builder only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.spec import ModelSpec


def sentence_transformers(path: str | Path, spec: ModelSpec, texts: list[str],
                          **kwargs: Any) -> np.ndarray:
    """The checkpoint as sentence-transformers runs it (its Normalize module, if any)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", **kwargs)
    model.max_seq_length = spec.max_len
    return np.asarray(model.encode(texts, batch_size=16, normalize_embeddings=False))


def pool_rows(hidden: np.ndarray, mode: str) -> np.ndarray:
    """One unpadded row's hidden states (s, d) -> its vector (d), as each pooling is defined."""
    if mode == "cls":
        return hidden[0]
    if mode == "mean":
        return hidden.mean(axis=0)
    if mode == "last":
        return hidden[-1]
    raise ValueError(f"unknown pooling {mode!r}")


def transformers_pooled(path: str | Path, spec: ModelSpec, texts: list[str],
                        **forward: Any) -> np.ndarray:
    """transformers' tokenizer and model, text by text (no padding, so pooling needs no
    mask), then the spec's pooling and L2 norm in numpy."""
    import torch
    from transformers import AutoModel

    from builder.families.hf_tokenizer import load_tokenizer

    tokenizer = load_tokenizer(path, spec)  # with the EOS the spec requires, as the artifact
    model = AutoModel.from_pretrained(str(path), attn_implementation="eager",
                                      dtype=torch.float32).eval()
    out = []
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer([text], truncation=True, max_length=spec.max_len, return_tensors="pt")
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           **forward).last_hidden_state[0].double().numpy()
            out.append(pool_rows(hidden, spec.pooling))
    vectors = np.stack(out)
    if spec.normalize:
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)
