"""GME (models/gme.py): a Qwen2-VL model read as an embedder, exported as two graphs.

The vision graph takes the image patches of any number of images packed in one sequence,
plus what Qwen2-VL's vision tower would compute from `grid_thw` in a Python loop (a traced
export would bake one image's grid into constants): each patch's (h, w) rotary position and
the id of the image it belongs to, both computed on the host (runtime/adapters/qwen2_vl.py).
Attention is blocked per image from those ids. The language graph takes token ids, the
mask, mrope positions (3, b, s), also computed on the host, and the image embeddings with
an index saying which token takes which embedding row; it pools the last token and
L2-normalises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from builder.families import Items
from models.gme import prompt
from models.spec import ModelSpec


def load(path: str | Path) -> Any:
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    return Qwen2VLForConditionalGeneration.from_pretrained(
        str(path), attn_implementation="eager", dtype=torch.float32).eval().model


def _vision_tower(visual: Any) -> Any:
    import torch

    from transformers.models.qwen2_vl.modeling_qwen2_vl import apply_rotary_pos_emb_vision

    class VisionTower(torch.nn.Module):
        """patches (n, c*t*p*p), vision_pos (n, 2), segment (n,) -> merged (n/m^2, d)."""

        def __init__(self) -> None:
            super().__init__()
            self.visual = visual

        def forward(self, pixel_values: torch.Tensor, vision_pos: torch.Tensor,
                    segment: torch.Tensor) -> torch.Tensor:
            hidden = self.visual.patch_embed(pixel_values)
            cos, sin = self.visual.rotary_pos_emb(hidden, vision_pos)
            same = segment.unsqueeze(0) == segment.unsqueeze(1)
            bias = torch.zeros_like(same, dtype=torch.float32).masked_fill(
                ~same, torch.finfo(torch.float32).min)
            for block in self.visual.blocks:
                hidden = hidden + self._attention(block.attn, block.norm1(hidden), cos, sin, bias)
                hidden = hidden + block.mlp(block.norm2(hidden))
            return self.visual.merger(hidden)

        @staticmethod
        def _attention(attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                       bias: torch.Tensor) -> torch.Tensor:
            n = x.shape[0]
            q, k, v = attn.qkv(x).reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
            q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
            q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # (heads, n, head_dim)
            # Scores, mask and softmax in float32 at every precision (fp16 overflows).
            scores = (q @ k.transpose(1, 2)).float() * attn.scaling + bias
            weights = torch.softmax(scores, dim=-1).to(v.dtype)
            return attn.proj((weights @ v).transpose(0, 1).reshape(n, -1))

    return VisionTower().eval()


def _language_tower(language: Any) -> Any:
    import torch

    from builder.families.pooling import l2_normalize, pool

    class LanguageTower(torch.nn.Module):
        """ids, mask, mrope positions, image index, image rows -> last-token vectors."""

        def __init__(self) -> None:
            super().__init__()
            self.language = language

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    position_ids: torch.Tensor, image_index: torch.Tensor,
                    image_embeds: torch.Tensor) -> torch.Tensor:
            text = self.language.embed_tokens(input_ids)
            # Row 0 of the table is a dummy: index 0 means "a text token, keep it".
            table = torch.cat([text.new_zeros(1, text.shape[-1]), image_embeds], 0)
            embeds = torch.where((image_index > 0).unsqueeze(-1), table[image_index], text)
            out = self.language(inputs_embeds=embeds, attention_mask=attention_mask,
                                position_ids=position_ids, use_cache=False)
            return l2_normalize(pool(out.last_hidden_state, attention_mask, "last"))

    return LanguageTower().eval()


def graphs(path: str | Path, spec: ModelSpec) -> dict[str, tuple[Any, dict, tuple]]:
    import torch

    model = load(path)
    patch_dim = model.visual.patch_embed.proj.weight[0].numel()
    seq = {0: "batch", 1: "sequence"}
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    positions = torch.arange(6).view(1, 1, 6).expand(3, 2, 6).contiguous()
    index = torch.tensor([[0, 1, 2, 0, 0, 0], [0, 0, 3, 4, 0, 0]], dtype=torch.long)
    language_sample = (ids, mask, positions, index, torch.randn(4, spec.dims))
    vision_sample = (torch.randn(32, patch_dim), torch.randint(0, 4, (32, 2)),
                     torch.tensor([0] * 16 + [1] * 16))
    return {
        "text": (_language_tower(model.language_model), {
            "input_ids": seq, "attention_mask": seq, "position_ids": {1: "batch", 2: "sequence"},
            "image_index": seq, "image_embeds": {0: "image_tokens"}}, language_sample),
        "image": (_vision_tower(model.visual), {
            "pixel_values": {0: "patches"}, "vision_pos": {0: "patches"},
            "segment": {0: "patches"}}, vision_sample),
    }


def reference(path: str | Path, spec: ModelSpec, items: Items) -> np.ndarray:
    """transformers' Qwen2-VL image processor and model (mrope from get_rope_index), item by
    item; <|image_pad|> expanded as Qwen2VLProcessor does (its video half needs torchvision)."""
    import torch
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

    model = load(path)
    assert spec.vision is not None
    images = Qwen2VLImageProcessorPil.from_pretrained(
        str(path), min_pixels=spec.vision.min_pixels, max_pixels=spec.vision.max_pixels)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    pad_id = model.config.image_token_id
    out = []
    with torch.inference_mode():
        for text, image in items:
            text_in, vision = prompt(text, image is not None), {}
            if image is not None:
                vision = dict(images(images=[image], return_tensors="pt"))
                n = int(vision["image_grid_thw"][0].prod()) // images.merge_size ** 2
                text_in = text_in.replace("<|image_pad|>", "<|image_pad|>" * n)
            enc = tokenizer([text_in], return_tensors="pt")
            enc["mm_token_type_ids"] = (enc["input_ids"] == pad_id).int()
            hidden = model(**enc, **vision, use_cache=False).last_hidden_state
            out.append(torch.nn.functional.normalize(hidden[:, -1], dim=-1).numpy()[0])
    return np.stack(out)
