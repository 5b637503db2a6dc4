"""CLIP (openai/clip-vit-*): two towers in one embedding space, two ONNX graphs.

The text tower pools the EOS token and projects it (get_text_features); the vision tower
projects the CLS token (get_image_features). Both are L2-normalised inside their graphs,
so the two engines answer in the same space. Image preprocessing (resize the shortest
side, centre crop, normalise) runs in numpy at serving time (runtime/images.py) with the
constants of the checkpoint's preprocessor_config.json, which the builder copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import ModelSpec, VisionFacts

PREPROCESSOR = "preprocessor_config.json"  # copied into the artifact by the builder


def make_spec(info: CheckpointInfo) -> ModelSpec:
    text = info.config.get("text_config") or {}
    vision = info.config.get("vision_config") or {}
    positions = int(text.get("max_position_embeddings", 77))
    return ModelSpec(
        family="clip",
        architecture=info.architecture,
        pooling="last",  # the EOS token closes every row (the tokenizer appends it)
        dims=int(info.config.get("projection_dim", 512)),
        max_len=min(info.max_len(positions), positions),
        normalize=True,
        modalities=("text", "image"),
        vision=VisionFacts(patch_size=int(vision.get("patch_size", 32)),
                           image_size=int(vision.get("image_size", 224))),
    )


def _load(path: str | Path) -> Any:
    import torch
    from transformers import CLIPModel

    return CLIPModel.from_pretrained(str(path), attn_implementation="eager",
                                     dtype=torch.float32).eval()


def _towers(model: Any) -> tuple[Any, Any]:
    import torch

    from models.pooling import l2_normalize

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


def export_module(path: str | Path, spec: ModelSpec) -> Any:
    return _towers(_load(path))[0]


def towers(path: str | Path, spec: ModelSpec) -> dict[str, tuple[Any, dict, tuple]]:
    """text (ids, mask) and image (pixel_values) towers, for builder.export_towers."""
    import torch

    from models.pooling import sample_ids

    text, image = _towers(_load(path))
    assert spec.vision is not None
    size = spec.vision.image_size
    seq = {0: "batch", 1: "sequence"}
    return {
        "text": (text, {"input_ids": seq, "attention_mask": seq}, sample_ids()),
        "image": (image, {"pixel_values": {0: "batch"}}, (torch.randn(2, 3, size, size),)),
    }


def reference(path: str | Path, spec: ModelSpec, texts: list[str]) -> Any:
    """transformers' own get_text_features, one text at a time (no padding)."""
    return reference_items(path, spec, [(t, None) for t in texts])


def reference_items(path: str | Path, spec: ModelSpec, items: list[tuple[Any, Any]]) -> np.ndarray:
    """(text, PIL image) items -> vectors with transformers' tokenizer, processor and model."""
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessorPil

    model = _load(path)
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


FAMILY = Family(
    name="clip",
    description="CLIP dual encoders (openai/clip-vit-*): text and image towers, one space",
    architectures=("CLIPModel",),
    make_spec=make_spec,
    export_module=export_module,
    reference=reference,
    towers=towers,
    reference_items=reference_items,
)
