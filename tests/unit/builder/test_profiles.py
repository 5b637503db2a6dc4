"""Optimisation profiles from a graph's named input shapes: text buckets, GME's language
graph (image rows, 3-D positions) and vision graph (packed patches), CLIP's image graph."""

from __future__ import annotations

import pytest

from builder.profiles import graph_profiles, plan_profiles, seq_edges
from models.spec import ModelSpec, VisionFacts
from runtime.backends.trt_plan import ShapeRange
from runtime.artifact.manifest import BuildLimits


def spec(max_len: int) -> ModelSpec:
    return ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=384,
                     max_len=max_len)


@pytest.mark.parametrize("max_len, edges", [
    (64, (64,)), (128, (128,)), (512, (128, 256, 512)), (1800, (128, 256, 512, 1024, 1800)),
    (1100, (128, 256, 512, 1024, 1100)),
    (32768, (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768))])
def test_seq_edges_double(max_len: int, edges: tuple[int, ...]) -> None:
    assert seq_edges(max_len) == edges


def test_profiles_for_bge_512() -> None:
    short, mid, long = plan_profiles(spec(512), max_batch_size=64, max_batch_tokens=16384)
    assert [short.name, mid.name, long.name] == ["seq128", "seq256", "seq512"]
    assert [name for name, _ in short.shapes] == ["input_ids", "attention_mask"]
    # rows of 1..128 tokens, up to 64 rows; opt at the bucket middle (64 tokens)
    assert short.first == ShapeRange((1, 1), (64, 64), (64, 128))
    assert mid.first == ShapeRange((1, 129), (64, 192), (64, 256))  # 16384 // 192 = 85 > 64
    # rows of >= 257 tokens: the budget allows 16384 // 257 = 63 rows; opt 384 -> 42 rows
    assert long.first == ShapeRange((1, 257), (42, 384), (63, 512))
    assert "384" in long.reason and "16384" in long.reason and "32256" in long.reason


@pytest.mark.parametrize("max_len", [77, 512, 1100, 1800, 2048, 8192, 32768, 131072])
@pytest.mark.parametrize("budget", [4096, 16384, 65536])
def test_every_box_within_twice_the_token_budget(max_len: int, budget: int) -> None:
    """The issue's boxes: GME 129..1800 held 64 x 1800 = 115,200 tokens (7x 16,384); a 32k
    decoder's 2049..32768 held 7 x 32,768 = 229,376. Now no box passes 2x the budget
    unless one row alone is longer than the budget."""
    profiles = plan_profiles(spec(max_len), max_batch_size=64, max_batch_tokens=budget)
    assert profiles[-1].max_seq == max_len and profiles[0].min_seq == 1
    for below, above in zip(profiles, profiles[1:]):  # contiguous, no gap or overlap
        assert above.min_seq == below.max_seq + 1
    for p in profiles:
        box = p.max_batch * p.max_seq
        assert box <= max(2 * budget, p.max_seq), (p.name, box)
        # the batcher's worst batch in this bucket fits: budget // shortest row, capped at 64
        assert p.max_batch == max(1, min(64, budget // p.min_seq))


def test_long_context_boxes() -> None:
    profiles = plan_profiles(spec(32768), max_batch_size=64, max_batch_tokens=16384)
    boxes = {p.name: (p.max_batch, p.max_seq) for p in profiles}
    assert boxes["seq2048"] == (15, 2048)  # was 64 x 2048 = 131,072 tokens
    assert boxes["seq4096"] == (7, 4096)
    assert boxes["seq32768"] == (1, 32768)  # was 7 x 32,768 = 229,376 tokens
    assert profiles[-1].first.opt == (1, 24576)  # middle of 16385..32768, multiple of 8
    assert all(r.opt[1] % 8 == 0 for p in profiles for _, r in p.shapes)


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
    profiles = graph_profiles(GME_LANGUAGE, GME, BuildLimits(64, 16384))
    short, long = profiles[0], profiles[-1]
    assert [p.name for p in profiles] == ["seq128", "seq256", "seq512", "seq1024", "seq1800"]
    assert [name for name, _ in short.shapes] == list(GME_LANGUAGE)  # graph order, every input
    shapes = dict(short.shapes)
    assert shapes["input_ids"] == ShapeRange((1, 1), (64, 64), (64, 128))
    # position_ids (3, batch, sequence): the same batch and sequence ranges as the ids
    assert shapes["position_ids"] == ShapeRange((3, 1, 1), (3, 64, 64), (3, 64, 128))
    # image rows: none (a text-only batch) up to every token of the batch (64 x 128 = 8192);
    # opt: one largest image, 1280 * 28^2 / 14^2 = 5120 patches merged 4 to 1
    assert shapes["image_embeds"] == ShapeRange((0, 1536), (1280, 1536), (8192, 1536))
    # long rows (1025..1800): at most 16384 // 1025 = 15 rows, 27,000 tokens (the issue's
    # OutOfMemory came from 64 x 1800); image rows capped by the 16384-token budget
    assert dict(long.shapes)["input_ids"].max == (15, 1800)
    assert dict(long.shapes)["position_ids"].max == (3, 15, 1800)
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
