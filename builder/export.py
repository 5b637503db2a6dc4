"""Checkpoint -> ONNX with dynamic batch and sequence axes, pooling and L2 norm in-graph.

The TorchScript exporter (dynamo=False) with eager attention: measured here it exports in
seconds and lets ONNX Runtime fuse attention and layer norm (13% faster than dynamo's graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder import precision as precisions
from models.family import Family
from models.spec import ModelSpec

OPSET = 17


def dynamic_axes(spec: ModelSpec) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in spec.inputs}
    axes["embeddings"] = {0: "batch"}
    return axes


def input_shapes(spec: ModelSpec) -> dict[str, list[Any]]:
    return {name: ["batch", "sequence"] for name in spec.inputs}


def export_text(family: Family, checkpoint: str | Path, spec: ModelSpec, out: Path,
                precision: str = "fp32") -> Path:
    import torch

    prec = precisions.get(precision)
    module = precisions.prepare(family.export_module(checkpoint, spec), prec)
    # A sample with real padding so the traced graph keeps the masking path.
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    mask[0] = 1
    path = out / "model.onnx"
    with torch.inference_mode(), precisions.float32_softmax(prec):
        torch.onnx.export(
            module,
            (ids, mask),
            str(path),
            input_names=list(spec.inputs),
            output_names=["embeddings"],
            dynamic_axes=dynamic_axes(spec),
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def save_tokenizer(checkpoint: str | Path, out: Path) -> Path:
    """The model's own fast tokenizer as tokenizer.json, padding and truncation off."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    path = out / "tokenizer.json"
    backend.save(str(path))
    return path
