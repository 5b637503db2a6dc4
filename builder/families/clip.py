"""CLIP (models/clip.py): the text tower pools the EOS token and projects it
(get_text_features); the vision tower projects the CLS token (get_image_features). Both are
L2-normalised inside their graphs, so the two engines answer in the same space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from builder.families import Items
from models.spec import ModelSpec


def load(path: str | Path) -> Any:
    import torch
    from transformers import CLIPModel

    return CLIPModel.from_pretrained(str(path), attn_implementation="eager",
                                     dtype=torch.float32).eval()


def _towers(model: Any) -> tuple[Any, Any]:
    import torch

    from builder.families.pooling import l2_normalize

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return l2_normalize(out.pooler_output)

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return l2_normalize(self.model.get_image_features(pixel_values=pixel_values).pooler_output)

    return TextTower().eval(), ImageTower().eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple[Any, dict, tuple]]:
    """text (ids, mask) and image (pixel_values) towers."""
    import torch

    from builder.families.pooling import sample_ids

    text, image = _towers(load(path))
    assert spec.vision is not None
    size = spec.vision.image_size
    seq = {0: "batch", 1: "sequence"}
    return {
        "text": (text, {"input_ids": seq, "attention_mask": seq}, sample_ids()),
        "image": (image, {"pixel_values": {0: "batch"}}, (torch.randn(2, 3, size, size),)),
    }


def reference(path: str | Path, spec: ModelSpec, items: Items) -> np.ndarray:
    """(text, PIL image) items -> vectors with transformers' tokenizer, processor and model,
    one at a time (no padding)."""
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessorPil

    model = load(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    processor = CLIPImageProcessorPil.from_pretrained(str(path))
    out = []
    with torch.inference_mode():
        for text, image in items:
            if image is not None:
                pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
                vec = model.get_image_features(pixel_values=pixels).pooler_output
            else:
                enc = tokenizer([text], truncation=True, max_length=spec.max_len,
                                return_tensors="pt")
                vec = model.get_text_features(**enc).pooler_output
            out.append(torch.nn.functional.normalize(vec, dim=-1).numpy()[0])
    return np.stack(out)
