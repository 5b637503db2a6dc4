"""CLIP (openai/clip-vit-*): two towers in one embedding space, two ONNX graphs.

The text tower pools the EOS token and projects it (get_text_features); the vision tower
projects the CLS token (get_image_features). Both are L2-normalised inside their graphs,
so the two engines answer in the same space. Image preprocessing (resize the shortest
side, centre crop, normalise) runs in numpy at serving time (runtime/adapters/images.py) with the
constants of the checkpoint's preprocessor_config.json, which the builder copies.
"""

from __future__ import annotations

from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import AdapterKind, ModelSpec, VisionFacts


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


FAMILY = Family(
    name="clip",
    description="CLIP dual encoders (openai/clip-vit-*): text and image towers, one space",
    architectures=("CLIPModel",),
    make_spec=make_spec,
    exporter="builder.families.clip",
    adapter=AdapterKind.DUAL_TOWER,
)
