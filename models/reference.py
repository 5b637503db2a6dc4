"""Reference embeddings from the original implementations, for the builder's parity gate.

sentence-transformers when the checkpoint ships its files (what users run instead of us),
else transformers plus the same pooling the export uses. Imported by the builder only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.spec import ModelSpec


def sentence_transformers_or_pooled(path: str | Path, spec: ModelSpec, texts: list[str]) -> Any:
    if (Path(path) / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
        model.max_seq_length = spec.max_len
        return model.encode(texts, batch_size=16, normalize_embeddings=spec.normalize)
    return transformers_pooled(path, spec, texts)


def transformers_pooled(path: str | Path, spec: ModelSpec, texts: list[str]) -> np.ndarray:
    import torch

    from models.hf_tokenizer import load_tokenizer
    from models.registry import family_by_name

    tokenizer = load_tokenizer(path, spec)  # with the EOS the spec requires, as the artifact
    tokenizer.padding_side = "right"
    module = family_by_name(spec.family).export_module(path, spec)
    out = []
    with torch.inference_mode():
        for text in texts:  # one by one: no padding in the reference
            enc = tokenizer([text], truncation=True, max_length=spec.max_len, return_tensors="pt")
            out.append(module(enc["input_ids"], enc["attention_mask"]).numpy()[0])
    return np.stack(out)
