"""Optimisation profiles from a graph's named input shapes: text buckets, GME's language
graph (image rows, 3-D positions) and vision graph (packed patches), CLIP's image graph."""

from __future__ import annotations

import pytest

from builder.profiles import graph_profiles, plan_profiles, seq_edges
from models.spec import ModelSpec, VisionFacts
from runtime.backends.trt_plan import ShapeRange
from runtime.manifest import BuildLimits


def spec(max_len: int) -> ModelSpec:
    return ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=384,
                     max_len=max_len)


@pytest.mark.parametrize("max_len, edges", [
    (64, (64,)), (128, (128,)), (512, (128, 512)), (2047, (128, 2047)),
    (8192, (128, 1024, 8192)), (32768, (128, 2048, 32768))])
def test_seq_edges(max_len: int, edges: tuple[int, ...]) -> None:
    assert seq_edges(max_len) == edges


def test_profiles_for_bge_512() -> None:
    short, long = plan_profiles(spec(512), max_batch_size=64, max_batch_tokens=16384)
    assert [short.name, long.name] == ["short", "long"]
    assert [name for name, _ in short.shapes] == ["input_ids", "attention_mask"]
    # short: rows of 1..128 tokens, up to 64 rows; opt at the bucket middle (64 tokens)
    assert short.first == ShapeRange((1, 1), (64, 64), (64, 128))
    # long: rows of >= 129 tokens, so the token budget allows at most 16384 // 129 = 127
    # rows, capped at 64; opt length 320 -> 16384 // 320 = 51 rows
    assert long.first == ShapeRange((1, 129), (51, 320), (64, 512))
    assert "320" in long.reason and "16384" in long.reason


def test_profiles_for_long_context_shrink_batch() -> None:
    short, medium, long = plan_profiles(spec(32768), max_batch_size=64, max_batch_tokens=16384)
    assert (medium.min_seq, medium.max_seq) == (129, 2048)
    assert (long.min_seq, long.max_seq) == (2049, 32768)
    assert long.max_batch == 16384 // 2049 == 7
    assert long.first.opt == (1, 17408)  # middle of 2049..32768 rounded up to 8; budget: 1 row
    assert all(r.opt[1] % 8 == 0 for p in (short, medium, long) for _, r in p.shapes)


def test_single_profile_and_bad_limits() -> None:
    (only,) = plan_profiles(spec(100), max_batch_size=8, max_batch_tokens=400)
    assert only.name == "all" and only.first == ShapeRange((1, 1), (7, 56), (8, 100))  # 400 // 56 = 7 rows
    with pytest.raises(ValueError):
        plan_profiles(spec(100), max_batch_size=0, max_batch_tokens=400)
    with pytest.raises(ValueError):
        ShapeRange((1, 1), (9, 8), (8, 100))



GME = ModelSpec(family="gme", architecture="Qwen2VLForConditionalGeneration", pooling="last",
                dims=1536, max_len=1800, modalities=("text", "image"),
                inputs=("input_ids", "attention_mask", "position_ids", "image_index",
                        "image_embeds"),
                vision=VisionFacts(patch_size=14, spatial_merge_size=2,
                                   min_pixels=256 * 28 * 28, max_pixels=1280 * 28 * 28))
GME_LANGUAGE: dict[str, list[int | str]] = {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"],
                "position_ids": [3, "batch", "sequence"], "image_index": ["batch", "sequence"],
                "image_embeds": ["image_tokens", 1536]}


def test_gme_language_graph_shares_axes_and_takes_zero_image_rows() -> None:
    short, long = graph_profiles(GME_LANGUAGE, GME, BuildLimits(64, 16384))
    assert [name for name, _ in short.shapes] == list(GME_LANGUAGE)  # graph order, every input
    shapes = dict(short.shapes)
    assert shapes["input_ids"] == ShapeRange((1, 1), (64, 64), (64, 128))
    # position_ids (3, batch, sequence): the same batch and sequence ranges as the ids
    assert shapes["position_ids"] == ShapeRange((3, 1, 1), (3, 64, 64), (3, 64, 128))
    # image rows: none (a text-only batch) up to every token of the batch (64 x 128 = 8192);
    # opt: one largest image, 1280 * 28^2 / 14^2 = 5120 patches merged 4 to 1
    assert shapes["image_embeds"] == ShapeRange((0, 1536), (1280, 1536), (8192, 1536))
    # long rows (129..1800): the 16384-token budget caps image rows, not 64 x 1800
    assert dict(long.shapes)["image_embeds"].max == (16384, 1536)


def test_gme_vision_graph_packs_patches_in_merge_units() -> None:
    inputs: dict[str, list[int | str]] = {"pixel_values": ["patches", 1176], "vision_pos": ["patches", 2],
              "segment": ["patches"]}
    (only,) = graph_profiles(inputs, GME, BuildLimits(64, 16384))
    shapes = dict(only.shapes)
    # 1..max_patches would not do: the merger reshapes by 4, so sizes are multiples of 4
    assert shapes["pixel_values"] == ShapeRange((4, 1176), (2560, 1176), (5120, 1176))
    assert shapes["segment"] == ShapeRange((4,), (2560,), (5120,))
    assert shapes["vision_pos"].max == (5120, 2)


def test_clip_image_graph_takes_whole_batches_of_images() -> None:
    clip = ModelSpec(family="clip", architecture="CLIPModel", pooling="last", dims=512,
                     max_len=77, modalities=("text", "image"),
                     vision=VisionFacts(patch_size=32, image_size=224))
    (only,) = graph_profiles({"pixel_values": ["batch", 3, 224, 224]}, clip, BuildLimits(32, 8192))
    assert only.first == ShapeRange((1, 3, 224, 224), (32, 3, 224, 224), (32, 3, 224, 224))
    (text,) = graph_profiles({"input_ids": ["batch", "sequence"],
                              "attention_mask": ["batch", "sequence"]}, clip, BuildLimits(32, 8192))
    assert text.first == ShapeRange((1, 1), (32, 40), (32, 77))


def test_unknown_axis_and_patches_without_vision_facts_are_refused() -> None:
    with pytest.raises(ValueError, match="'frames'"):
        graph_profiles({"x": ["batch", "sequence", "frames"]}, spec(64), BuildLimits())
    with pytest.raises(ValueError, match="vision facts"):
        graph_profiles({"pixel_values": ["patches", 1176]}, spec(64), BuildLimits())
