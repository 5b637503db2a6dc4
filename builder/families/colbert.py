"""ColBERT (models/colbert.py): the body and its Dense projections, a normalised vector per
token, (batch, sequence, dims). Markers, query expansion and the skiplist are the runtime's
(runtime/adapters/colbert.py), applied to the rows; the reference (the build's parity gate)
is PyLate's encoding written out here per text, apart from the runtime's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from models.spec import ModelSpec, UnsupportedModelError

IDENTITY = ("torch.nn.modules.linear.Identity", "torch.nn.Identity")


def dense_layers(path: str | Path, spec: ModelSpec) -> list[Any]:
    """modules.json's Dense modules as torch Linears, in order (identity activation, no
    residual: what PyLate models ship; others are refused)."""
    import torch
    from safetensors.torch import load_file

    root = Path(path)
    modules = json.loads((root / "modules.json").read_text())
    layers = []
    for module in modules:
        if not str(module.get("type", "")).endswith("Dense"):
            continue
        folder = root / str(module.get("path", ""))
        config = json.loads((folder / "config.json").read_text())
        if config.get("use_residual") or config.get("activation_function",
                                                     IDENTITY[0]) not in IDENTITY:
            raise UnsupportedModelError(f"{folder}: a Dense with a residual or an activation "
                                        "is not supported")
        state = (load_file(str(folder / "model.safetensors"))
                 if (folder / "model.safetensors").is_file()
                 else torch.load(folder / "pytorch_model.bin", map_location="cpu"))
        linear = torch.nn.Linear(int(config["in_features"]), int(config["out_features"]),
                                 bias=bool(config.get("bias", True)))
        linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()})
        layers.append(linear.eval())
    return layers


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    import torch
    from transformers import AutoModel

    from builder.families.pooling import l2_normalize

    class TokenVectors(torch.nn.Module):
        """ids, mask -> (batch, sequence, dims) float32: every token's projected vector."""

        def __init__(self, body: torch.nn.Module, dense: list[torch.nn.Module]):
            super().__init__()
            self.body, self.dense = body, torch.nn.Sequential(*dense)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask
                               ).last_hidden_state
            return l2_normalize(self.dense(hidden))

    body = AutoModel.from_pretrained(str(path), attn_implementation="eager", dtype=torch.float32)
    return TokenVectors(body.eval(), dense_layers(path, spec)).eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple]:
    from builder.families.pooling import text_graphs

    return text_graphs(export_module(path, spec), spec)


def output_shape(spec: ModelSpec) -> list[str | int]:
    return ["batch", "sequence", spec.dims]


def reference(path: str | Path, spec: ModelSpec, items: Any) -> Any:
    raise ValueError("ColBERT gives a vector per token: use reference_tokens")


def reference_tokens(path: str | Path, spec: ModelSpec, texts: list[str],
                     query: bool) -> list[np.ndarray]:
    """PyLate's ColBERT.encode(texts, is_query=query) per text: the marker after CLS; a
    query padded with [MASK] to query_length (attended only if configured) and every
    vector kept; a document's skiplist tokens dropped."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    late = spec.late
    assert late is not None
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    body = AutoModel.from_pretrained(str(path), attn_implementation="eager",
                                     dtype=torch.float32).eval()
    dense = torch.nn.Sequential(*dense_layers(path, spec))
    marker = late.query_prefix_id if query else late.document_prefix_id
    limit = (late.query_length - (marker >= 0)) if query else spec.max_len
    out = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=limit)["input_ids"]
            ids = ids[:1] + [marker] * (marker >= 0) + ids[1:]
            mask = [1] * len(ids)
            if query and late.expand_queries:
                pad = late.query_length - len(ids)
                ids, mask = ids + [late.expansion_id] * pad, mask + [int(late.attend_expansion)] * pad
            hidden = body(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask]))
            vectors = dense(hidden.last_hidden_state[0]).double().numpy()
            # PyLate keeps every query vector; a document's all but the skiplist's.
            keep = (np.ones(len(ids), dtype=bool) if query
                    else ~np.isin(ids, late.skiplist_ids or [-1]))
            kept = vectors[keep]
            out.append(kept / np.linalg.norm(kept, axis=1, keepdims=True))
    return out
