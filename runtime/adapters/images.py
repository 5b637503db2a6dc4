"""Image preprocessing in numpy and Pillow (no torch, no transformers), read from the
checkpoint's preprocessor_config.json that the builder copies into the artifact.

CLIP: resize the shortest side (bicubic, as CLIPImageProcessor), centre crop, rescale,
normalise -> (3, H, W). Qwen2-VL: "smart resize" to multiples of patch x merge within
[min_pixels, max_pixels], rescale, normalise, cut into (t x p x p) patches in the merge
order the vision tower expects -> (patches, 3 * t * p * p) and the grid (1, h, w).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.spec import qwen2_vl_pixel_range
from runtime.errors import ArtifactError, InvalidRequestError


def read_preprocessor(path: Path) -> dict[str, Any]:
    """The artifact's copy of the checkpoint's preprocessor_config.json
    (Artifact.preprocessor_path)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is missing or unreadable: rebuild the artifact") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB as transformers converts: transparency composited onto white, not dropped."""
    if image.mode == "RGB":
        return image
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def _normalize(pixels: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W), rescaled and normalised as transformers does."""
    image = pixels.transpose(2, 0, 1).astype(np.float32)
    if cfg.get("do_rescale", True):
        image = (image.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    if cfg.get("do_normalize", True):
        mean = np.asarray(cfg["image_mean"], dtype=np.float32).reshape(3, 1, 1)
        std = np.asarray(cfg["image_std"], dtype=np.float32).reshape(3, 1, 1)
        image = (image - mean) / std
    return image.astype(np.float32)


@dataclass(frozen=True)
class ClipPreprocessor:
    config: dict[str, Any]

    @property
    def crop(self) -> tuple[int, int]:
        crop = self.config.get("crop_size", 224)
        if isinstance(crop, int):
            return crop, crop
        return int(crop["height"]), int(crop["width"])

    def __call__(self, image: Image.Image) -> np.ndarray:
        image = to_rgb(image)
        size = self.config.get("size", {"shortest_edge": 224})
        short = size["shortest_edge"] if isinstance(size, dict) else int(size)
        width, height = image.size
        if width <= height:  # the short side becomes `short`, the long side is floored
            new = (short, int(short * height / width))
        else:
            new = (int(short * width / height), short)
        image = image.resize(new, resample=int(self.config.get("resample", 3)))
        pixels = _center_crop(np.asarray(image), *self.crop)
        return _normalize(pixels, self.config)


def _center_crop(pixels: np.ndarray, crop_h: int, crop_w: int) -> np.ndarray:
    """transformers' center_crop: top-left at (size - crop) // 2, zero padding if smaller."""
    height, width = pixels.shape[:2]
    if height < crop_h or width < crop_w:
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        pixels = np.pad(pixels, ((pad_h // 2, pad_h - pad_h // 2),
                                 (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
        height, width = pixels.shape[:2]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return pixels[top:top + crop_h, left:left + crop_w]


@dataclass(frozen=True)
class QwenVisionPreprocessor:
    config: dict[str, Any]

    @property
    def patch(self) -> int:
        return int(self.config.get("patch_size", 14))

    @property
    def temporal(self) -> int:
        return int(self.config.get("temporal_patch_size", 2))

    @property
    def merge(self) -> int:
        return int(self.config.get("merge_size", 2))

    def pixel_range(self) -> tuple[int, int]:
        return qwen2_vl_pixel_range(self.config)

    def target_size(self, height: int, width: int) -> tuple[int, int]:
        """Qwen2-VL's smart_resize: multiples of patch x merge, pixel count within range."""
        factor = self.patch * self.merge
        if max(height, width) / min(height, width) > 200:
            raise InvalidRequestError(
                f"The image's aspect ratio {max(height, width) / min(height, width):.0f} is "
                "above 200, which this model cannot read.", param="input", code="invalid_image")
        low, high = self.pixel_range()
        h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
        if h_bar * w_bar > high:
            beta = math.sqrt((height * width) / high)
            h_bar = max(factor, math.floor(height / beta / factor) * factor)
            w_bar = max(factor, math.floor(width / beta / factor) * factor)
        elif h_bar * w_bar < low:
            beta = math.sqrt(low / (height * width))
            h_bar = math.ceil(height * beta / factor) * factor
            w_bar = math.ceil(width * beta / factor) * factor
        return h_bar, w_bar

    def __call__(self, image: Image.Image) -> tuple[np.ndarray, tuple[int, int, int]]:
        image = to_rgb(image)
        height, width = self.target_size(image.height, image.width)
        image = image.resize((width, height), resample=int(self.config.get("resample", 3)))
        pixels = _normalize(np.asarray(image), self.config)
        return self.patchify(pixels)

    def patchify(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
        """(3, H, W) -> (h * w, 3 * t * p * p) in merge-block order, and the grid (1, h, w)."""
        p, m, t = self.patch, self.merge, self.temporal
        channels, height, width = image.shape
        gh, gw = height // p, width // p
        blocks = image.reshape(channels, gh // m, m, p, gw // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)
        # A still image is its own video of t identical frames.
        frames = np.broadcast_to(blocks[:, :, :, :, :, None], (*blocks.shape[:5], t, p, p))
        return (np.ascontiguousarray(frames.reshape(gh * gw, channels * t * p * p)),
                (1, gh, gw))
