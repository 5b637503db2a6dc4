"""Per-profile device memory estimates and the --gpu-memory-gib check (builder/memory.py),
on the real hub configurations' widths."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import memory
from builder.memory import GIB, Box, Widths, activation_need, check_budget, needs, widths
from models.spec import AdapterKind, ModelSpec, VisionFacts
from builder.profiles import graph_profiles
from runtime.artifact.manifest import BuildLimits

# gme-Qwen2-VL-2B-Instruct's config.json (layers as the hub has them)
GME_CONFIG = {
    "text_config": {"hidden_size": 1536, "intermediate_size": 8960, "num_attention_heads": 12,
                    "num_key_value_heads": 2, "num_hidden_layers": 28},
    "vision_config": {"embed_dim": 1280, "hidden_size": 1536, "num_heads": 16, "mlp_ratio": 4,
                      "depth": 32}}
GME = ModelSpec(family="gme", architecture="Qwen2VLForConditionalGeneration", pooling="last",
                dims=1536, max_len=1800, modalities=("text", "image"),
                inputs=("input_ids", "attention_mask", "position_ids", "image_index",
                        "image_embeds"),
                vision=VisionFacts(patch_size=14, spatial_merge_size=2,
                                   min_pixels=256 * 28 * 28, max_pixels=1280 * 28 * 28),
                adapter=AdapterKind.VISION_LANGUAGE)
QWEN3_4B = {"hidden_size": 2560, "intermediate_size": 9728, "num_attention_heads": 32,
            "num_hidden_layers": 36}


def test_widths_from_nested_and_flat_configs() -> None:
    assert widths(GME_CONFIG, "text") == Widths(1536, 8960, 12, 28)
    assert widths(GME_CONFIG, "image") == Widths(1280, 5120, 16, 32)  # embed_dim, mlp_ratio 4
    assert widths(QWEN3_4B, "text") == Widths(2560, 9728, 32, 36)


# TensorRT for RTX 1.7.1's own "Total Activation Memory" (builder INFO log), measured on this
# machine at real widths, one layer: TensorRT for RTX sizes a profile at its opt shape.
# gme-Qwen2-VL-2B's language model, fp32, one profile at a time:
MEASURED_GME_FP32 = {(21, 768): 4_884_070_912, (11, 1416): 5_558_528_512}
# Qwen3-Embedding-4B, the default profiles (the largest: 1 x 24576 at opt), fp16 and fp32:
QWEN3_4B_OPT = Box("text", "seq32768", 1, 24576, 16385)
MEASURED_QWEN3_4B = {"fp16": 3_897_557_504, "fp32": 277_769_093_632}


def test_estimate_tracks_tensorrt_for_rtx_figures() -> None:
    w = widths(GME_CONFIG, "text")
    for (rows, seq), measured in MEASURED_GME_FP32.items():
        estimate = activation_need(Box("text", "opt", rows, seq), w, "fp32").activations
        assert 1.0 < estimate / measured < 1.6, (rows, seq, estimate, measured)  # upper bound
    q = widths(QWEN3_4B, "text")
    ratio = {p: activation_need(QWEN3_4B_OPT, q, p).activations / m
             for p, m in MEASURED_QWEN3_4B.items()}
    assert 1.0 < ratio["fp32"] < 1.2 and 0.95 < ratio["fp16"] < 1.05, ratio


def test_fp16_attention_is_fused_fp32_is_not() -> None:
    """TensorRT for RTX's fp16 figure holds no seq^2 term (3.6 GiB at 24576 tokens); fp32's
    holds 32 heads x 24576^2 floats several times over (259 GiB)."""
    assert memory.attention_fused("fp16") and not memory.attention_fused("fp32")
    assert MEASURED_QWEN3_4B["fp32"] > 70 * MEASURED_QWEN3_4B["fp16"]
    q = widths(QWEN3_4B, "text")
    assert activation_need(QWEN3_4B_OPT, q, "fp16").scores == 0
    assert activation_need(QWEN3_4B_OPT, q, "fp32").scores == 24576 ** 2 * 32 * 4


def test_activation_estimate_terms() -> None:
    w = widths(GME_CONFIG, "text")
    need = activation_need(Box("text", "seq1800", 15, 1800, 1025), w, "fp32")
    cells = 15 * 1800 * 1800 * 12
    per_token = 2 * (2 * 1536 + 3 * 8960) + 4 * 1536
    assert need.scores == cells * 4  # 2.17 GiB of fp32 scores
    assert need.activations == 15 * 1800 * per_token * 4 + cells * (12 + 4)
    fp16 = activation_need(Box("text", "seq1800", 15, 1800, 1025), w, "fp16")
    assert fp16.activations == 15 * 1800 * per_token * 2  # fused: no scores
    # the old profile's box (64 rows x 1800): 4.3x the scores
    old = activation_need(Box("text", "long", 64, 1800, 129), w, "fp32")
    assert old.scores / need.scores == pytest.approx(64 / 15)
    assert old.activations > 60 * GIB > 16 * GIB > need.activations


def test_workspace_covers_the_largest_profile() -> None:
    assert memory.workspace_mib(0) == 4096
    assert memory.workspace_mib(5_558_528_512) == 6144  # gme fp32's need: 5.2 GiB
    assert memory.workspace_mib(4 << 30) == 4096


def test_needs_cover_every_tower_and_profile() -> None:
    found = needs(GME_CONFIG, GME, BuildLimits(64, 16384), "fp32")
    names = [(n.box.tower, n.box.profile) for n, _ in found]
    assert names == [("text", f"seq{e}") for e in (128, 256, 512, 1024, 1800)] + \
        [("image", "all")]
    image = found[-1][0]
    assert (image.box.rows, image.box.seq) == (1, 5120)  # packed patches of 1280 tokens
    assert image.scores == 16 * 5120 * 5120 * 4
    assert all(n.box.rows * n.box.seq <= 2 * 16384 for n, _ in found)


def test_budget_check_names_the_profile_and_the_fix() -> None:
    found = needs(GME_CONFIG, GME, BuildLimits(64, 16384), "fp32")
    weights = 9 * GIB  # 2.2B parameters in fp32
    assert check_budget(found, weights, "fp32", 80) is None
    line = check_budget(found, weights, "fp32", 24)
    assert line is not None and "\n" not in line
    assert line.startswith("profile text/seq1800 needs") and "--gpu-memory-gib 24" in line
    tokens = int(line.split("--max-batch-tokens to ")[1].split()[0])
    rows = tokens // 1025  # the fix is right: that budget's seq1800 box fits
    fixed = activation_need(Box("text", "seq1800", rows, 1800, 1025),
                            widths(GME_CONFIG, "text"), "fp32")
    assert fixed.total(weights) <= 24 * GIB
    assert "weights alone" in str(check_budget(found, 30 * GIB, "fp32", 24))


def test_one_row_too_long_says_so() -> None:
    qwen = ModelSpec(family="qwen3", architecture="Qwen3ForCausalLM", pooling="last",
                     dims=2560, max_len=32768)
    found = needs(QWEN3_4B, qwen, BuildLimits(64, 16384), "fp32")
    line = check_budget(found, 16 * GIB, "fp32", 80)
    # unfused (fp32), one row of 32768 tokens holds 32 x 32768^2 fp32 scores: 128 GiB
    assert line is not None and "one row of 32768 tokens" in line and "fp16" in line
    fp16 = needs(QWEN3_4B, qwen, BuildLimits(64, 16384), "fp16")
    assert check_budget(fp16, 8 * GIB, "fp16", 24) is None  # fused: 4B fp16 fits 24 GiB


def test_checkpoint_weights_scale_to_the_precision(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    assert memory.checkpoint_weights(tmp_path, {"torch_dtype": "bfloat16"}, "fp32") == 2000
    assert memory.checkpoint_weights(tmp_path, {"dtype": "float32"}, "fp16") == 500


TEXT_AXES = {"input_ids": ("batch", "sequence"), "attention_mask": ("batch", "sequence")}


def decoder_spec(max_len: int) -> ModelSpec:
    return ModelSpec(family="qwen3", architecture="Qwen3ForCausalLM", pooling="last",
                     dims=2560, max_len=max_len)


@pytest.mark.parametrize("max_len, heads, activation, verdict", [
    # TensorRT for RTX 1.7's figures for the real-width one-layer builds (BENCHMARKS.md)
    (32768, 32, 3_897_557_504, "fused"),  # Qwen3-Embedding-4B fp16
    (32768, 32, 277_769_093_632, "materialised"),  # Qwen3-Embedding-4B fp32
    (4096, 32, 3_523_248_640, "fused"),  # e5-mistral-7b fp32: 5 x 32 x 3072^2 floats = 6 GB
])
def test_attention_evidence_from_tensorrt_figures(max_len: int, heads: int, activation: int,
                                                  verdict: str) -> None:
    profiles = graph_profiles(TEXT_AXES, decoder_spec(max_len), BuildLimits(64, 16384))
    assert memory.attention_evidence(activation, profiles, TEXT_AXES, heads) == verdict


def test_attention_evidence_for_packed_patches() -> None:
    axes = {"pixel_values": ("patches", 1176), "vision_pos": ("patches", 2),
            "segment": ("patches",)}
    profiles = graph_profiles(axes, GME, BuildLimits(64, 16384))  # opt 2560 patches
    # one score tensor: 16 x 2560^2 x 4 = 419 MB; gme's vision graph at fp16 / fp32
    assert memory.attention_evidence(131_072_000, profiles, axes, 16) == "fused"
    assert memory.attention_evidence(3_512_729_600, profiles, axes, 16) == "materialised"
    assert memory.attention_evidence(0, profiles, axes, 16) == "unknown"
    # gme's language graph at fp16: 1.74 GiB against one 11 x 12 x 1416^2 float tensor
    # (0.99 GiB): the other tensors could hold it, the figure proves nothing
    lang = {"input_ids": ("batch", "sequence"), "attention_mask": ("batch", "sequence")}
    text = graph_profiles(lang, GME, BuildLimits(64, 16384))
    assert memory.attention_evidence(1_866_240_512, text, lang, 12) == "undetermined"
    assert memory.attention_evidence(5_558_528_512, text, lang, 12) == "materialised"


def test_attention_evidence_for_whole_images() -> None:
    """CLIP ViT-L/14-336: 28 images of 577 tokens at opt, 16 heads: 596 MB per tensor."""
    clip = ModelSpec(family="clip", architecture="CLIPModel", pooling="last", dims=768,
                     max_len=77, vision=VisionFacts(patch_size=14, image_size=336))
    axes = {"pixel_values": ("batch", 3, 336, 336)}
    profiles = graph_profiles(axes, clip, BuildLimits(64, 16384))
    assert memory.attention_evidence(363_962_368, profiles, axes, 16, 577) == "fused"  # fp16
    assert memory.attention_evidence(1_665_783_296, profiles, axes, 16, 577) == "materialised"
    # CLIP's text graph (64 x 77 at max, 12 heads): its 96 MB figure is hidden tensors, not a
    # 4.9 MB score tensor held 20 times
    text = {"input_ids": ("batch", "sequence"), "attention_mask": ("batch", "sequence")}
    short = graph_profiles(text, clip, BuildLimits(64, 16384))
    assert memory.attention_evidence(96_000_000, short, text, 12) == "undetermined"


def test_splade_counts_its_vocabulary_logits() -> None:
    """A SPLADE's (tokens x vocabulary) logits dwarf its body: without them the estimate was
    0.40e9 bytes where TensorRT for RTX measured 2.13e9 (fp16, bench/sparse.py's model)."""
    minilm = {"hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 12,
              "num_hidden_layers": 6}
    splade = ModelSpec(family="splade", architecture="BertForMaskedLM", pooling="max",
                       dims=30522, max_len=512, normalize=False, hidden_size=384,
                       sparse_activation="relu", adapter=AdapterKind.SPARSE)
    w = memory.tower_widths(minilm, "text", splade)
    assert w.head == 2 * 30522
    box = Box("text", "seq512", 42, 384)
    body = activation_need(box, widths(minilm, "text"), "fp16").activations
    need = activation_need(box, w, "fp16").activations
    assert need - body == 42 * 384 * 2 * 30522 * 4
    assert need > 2_125_928_960 > body  # TensorRT for RTX's figure for this box's plan
    (largest, _), *_ = sorted(needs(minilm, splade, BuildLimits(64, 16384), "fp16"),
                              key=lambda n: -n[0].activations)
    assert largest.activations > 16384 * 2 * 30522 * 4  # the head counted in the check too
