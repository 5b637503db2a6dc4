"""runtime/adapters/images.py against transformers' own image processors, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.adapters.images import ClipPreprocessor, QwenVisionPreprocessor, read_preprocessor

# camera: greyscale; logo: RGBA with transparency (composited onto white).
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "camera.png", "logo.png")


def photo(name: str) -> Image.Image:
    import skimage.data

    return Image.open(Path(skimage.data.__file__).parent / name)


def clip_config(short: int, crop: int) -> dict:
    return {"size": {"shortest_edge": short}, "crop_size": {"height": crop, "width": crop},
            "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "do_center_crop": True,
            "do_resize": True, "do_convert_rgb": True}


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("short,crop", [(224, 224), (336, 336), (40, 32)])
def test_clip_matches_transformers(name: str, short: int, crop: int) -> None:
    from transformers import CLIPImageProcessorPil

    cfg = clip_config(short, crop)
    image = photo(name)
    expected = CLIPImageProcessorPil(**cfg)(images=[image], return_tensors="np")["pixel_values"][0]
    ours = ClipPreprocessor(cfg)(image)
    assert ours.shape == expected.shape == (3, crop, crop)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("pixels", [(56 * 56, 28 * 28 * 1280), (56 * 56, 112 * 112),
                                    (256 * 28 * 28, 1280 * 28 * 28)])
def test_qwen2_vl_matches_transformers(name: str, pixels: tuple[int, int]) -> None:
    from transformers import Qwen2VLImageProcessorPil

    cfg = {**clip_config(0, 0), "size": {"shortest_edge": pixels[0], "longest_edge": pixels[1]},
           "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
    for key in ("crop_size", "do_center_crop"):
        cfg.pop(key)
    image = photo(name)
    expected = Qwen2VLImageProcessorPil(**cfg)(images=[image], return_tensors="np")
    patches, grid = QwenVisionPreprocessor(cfg)(image)
    assert list(grid) == expected["image_grid_thw"][0].tolist()
    assert patches.shape == expected["pixel_values"].shape
    np.testing.assert_allclose(patches, expected["pixel_values"], atol=1e-6, rtol=0)


def test_min_max_pixels_keys_win_over_size() -> None:
    from transformers import Qwen2VLImageProcessorPil

    cfg = {"min_pixels": 100, "max_pixels": 200,
           "size": {"shortest_edge": 1, "longest_edge": 2}}
    theirs = Qwen2VLImageProcessorPil(**cfg).size
    assert QwenVisionPreprocessor(cfg).pixel_range() == (100, 200) == (
        theirs["shortest_edge"], theirs["longest_edge"])


def test_missing_or_garbled_preprocessor_is_an_artifact_error(tmp_path: Path) -> None:
    from runtime.artifact.directory import PREPROCESSOR
    from runtime.errors import ArtifactError

    path = tmp_path / PREPROCESSOR
    with pytest.raises(ArtifactError, match="missing or unreadable"):
        read_preprocessor(path)
    path.write_text("{not json")
    with pytest.raises(ArtifactError, match="missing or unreadable"):
        read_preprocessor(path)
