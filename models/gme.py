"""GME (Alibaba-NLP/gme-Qwen2-VL-*): a Qwen2-VL model read as an embedder, with a vision
graph and a language graph (exported by builder/families/gme.py). The prompt is the
`gme-qwen2-vl` chat template, built here because the runtime builds it too.
"""

from __future__ import annotations


from models.checkpoint import CheckpointInfo
from models.family import Family
from models.spec import AdapterKind, ModelSpec, VisionFacts, qwen2_vl_pixel_range

TEMPLATE = "gme-qwen2-vl"
INPUTS = ("input_ids", "attention_mask", "position_ids", "image_index", "image_embeds")


def make_spec(info: CheckpointInfo) -> ModelSpec:
    text = info.config.get("text_config") or info.config
    positions = int(text.get("max_position_embeddings", 32768))
    vision = info.config.get("vision_config") or {}
    merge = int(vision.get("spatial_merge_size", 2))
    factor = int(vision.get("patch_size", 14)) * merge
    return ModelSpec(
        family="gme",
        architecture=info.architecture,
        pooling="last",
        dims=int(text["hidden_size"]),
        # GME's own code (gme_inference.py) caps prompts at max_length, 1800 by default.
        max_len=min(int(info.config.get("max_length", 1800)), info.max_len(positions)),
        normalize=True,
        chat_template=TEMPLATE,
        modalities=("text", "image"),
        items_mix_modalities=True,
        inputs=INPUTS,
        vision=VisionFacts(patch_size=int(vision.get("patch_size", 14)),
                           spatial_merge_size=merge, **image_pixels(info, factor)),
    )


def image_pixels(info: CheckpointInfo, factor: int) -> dict[str, int]:
    """The checkpoint's own range (preprocessor_config.json), which SGLang serves with (its
    Qwen2-VL processor is the checkpoint's image processor), with its top capped at GME's
    scripts' 1280 merged tokens; and the scripts' 256..1280 tokens (min/max_image_tokens).

    Why the cap: the exported vision attention is eager, a float32 patches x patches score
    matrix per head and image. At gme-Qwen2-VL-2B's checkpoint top (16384 tokens, 65536
    patches) that is ~275 GB per image, and the TensorRT vision profile would be built for
    it; at 1280 tokens (5120 patches) ~1.7 GB. Images up to that size get SGLang's sizes."""
    low, high = qwen2_vl_pixel_range(info.preprocessor_config)
    script_low = int(info.config.get("min_image_tokens", 256)) * factor ** 2
    script_high = int(info.config.get("max_image_tokens", 1280)) * factor ** 2
    return {"min_pixels": low, "max_pixels": min(high, script_high),
            "script_min_pixels": script_low, "script_max_pixels": script_high}


def prompt(text: str | None, image: bool, instruction: str = "You are a helpful assistant.") -> str:
    """GME's own template (gme_inference.py; SGLang's `gme-qwen2-vl`), one image at most."""
    user = ("<|vision_start|><|image_pad|><|vision_end|>" if image else "") + (text or "")
    return (f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n<|endoftext|>")


FAMILY = Family(
    name="gme",
    description="GME multimodal embedders (Qwen2-VL): text, image or both, last token",
    architectures=("Qwen2VLForConditionalGeneration",),
    make_spec=make_spec,
    exporter="builder.families.gme",
    adapter=AdapterKind.VISION_LANGUAGE,
)
