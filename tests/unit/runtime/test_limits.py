"""runtime/pipeline/limits.py: each tower's batch limits from flags, backend and the builder's record."""

from __future__ import annotations

import pytest

from models.spec import ModelSpec, VisionFacts
from runtime.backends.base import BackendLimits
from runtime.settings import DEFAULT_BATCH_TOKENS
from runtime.pipeline.limits import BatchFlags, plan_bound, resolve_batch
from runtime.artifact.manifest import BuildLimits

TEXT = ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=384, max_len=256)
CLIP = ModelSpec(family="clip", architecture="CLIPModel", pooling="cls", dims=512, max_len=77,
                 modalities=("text", "image"), vision=VisionFacts(patch_size=32, image_size=224))
GME = ModelSpec(family="gme", architecture="Qwen2VLForConditionalGeneration", pooling="last",
                dims=1536, max_len=32768, modalities=("text", "image"),
                vision=VisionFacts(patch_size=14, spatial_merge_size=2, min_pixels=3136,
                                   max_pixels=1280 * 28 * 28))
ORT = BackendLimits(max_batch_size=0, max_seq_len=256, concurrency=4, max_batch_tokens=512)
ORT_THREADS = BackendLimits(max_batch_size=0, max_seq_len=256)  # explicit --threads: no preference
PLAN = BackendLimits(max_batch_size=32, max_seq_len=256, seq_buckets=(128, 256), concurrency=2)
BUILT = BuildLimits(max_batch_size=32, max_batch_tokens=8192)


def test_defaults_without_flags_or_preferences() -> None:
    cfg = resolve_batch(BatchFlags(), ORT_THREADS, None, "text", TEXT)
    assert (cfg.max_batch_size, cfg.max_batch_tokens) == (64, DEFAULT_BATCH_TOKENS)
    assert (cfg.concurrency, cfg.seq_buckets) == (1, ())


def test_backend_preference_fills_what_flags_leave_open() -> None:
    cfg = resolve_batch(BatchFlags(), ORT, None, "text", TEXT)
    assert (cfg.max_batch_size, cfg.max_batch_tokens, cfg.concurrency) == (64, 512, 4)


def test_flags_win_over_preferences_on_dynamic_graphs() -> None:
    flags = BatchFlags(max_batch_size=256, max_batch_tokens=100_000, concurrency=8,
                       max_wait_ms=3.0, max_queue_rows=10, max_queue_wait_ms=50.0)
    cfg = resolve_batch(flags, ORT, None, "text", TEXT)
    assert (cfg.max_batch_size, cfg.max_batch_tokens, cfg.concurrency) == (256, 100_000, 8)
    assert (cfg.max_wait_ms, cfg.max_queue_rows, cfg.max_queue_wait_ms) == (3.0, 10, 50.0)


def test_a_plan_bounds_flags_and_lends_its_buckets() -> None:
    flags = BatchFlags(max_batch_size=128, max_batch_tokens=65536, concurrency=1)
    cfg = resolve_batch(flags, PLAN, BUILT, "text", TEXT)
    assert (cfg.max_batch_size, cfg.max_batch_tokens) == (32, 8192)
    assert (cfg.concurrency, cfg.seq_buckets) == (2, (128, 256))
    # Lower flags stay as given.
    low = resolve_batch(BatchFlags(max_batch_size=8, max_batch_tokens=1024), PLAN, BUILT,
                        "text", TEXT)
    assert (low.max_batch_size, low.max_batch_tokens) == (8, 1024)


def test_without_flags_a_plan_serves_the_budget_it_was_built_for() -> None:
    cfg = resolve_batch(BatchFlags(), PLAN, BUILT, "text", TEXT)
    assert (cfg.max_batch_size, cfg.max_batch_tokens) == (32, 8192)
    # A plan whose largest profile batch is below the recorded limit bounds the batch too.
    small = BackendLimits(max_batch_size=16, max_seq_len=256)
    assert resolve_batch(BatchFlags(), small, BUILT, "text", TEXT).max_batch_size == 16


def test_fixed_size_image_towers_batch_like_text() -> None:
    cfg = resolve_batch(BatchFlags(max_batch_tokens=4096), ORT_THREADS, None, "image", CLIP)
    assert (cfg.max_batch_size, cfg.max_batch_tokens) == (64, 4096)


def test_packed_image_towers_take_one_largest_image_of_patches() -> None:
    assert GME.vision is not None and GME.vision.max_patches == 5120
    for flags in (BatchFlags(), BatchFlags(max_batch_tokens=100_000)):
        assert resolve_batch(flags, ORT, None, "image", GME).max_batch_tokens == 5120
    # Above the text budget a plan was built for: the bound is the model's, not the text's.
    assert resolve_batch(BatchFlags(), PLAN, BuildLimits(64, 4096), "image",
                         GME).max_batch_tokens == 5120
    # The text tower of the same model keeps the text budget.
    assert resolve_batch(BatchFlags(), ORT, None, "text", GME).max_batch_tokens == 512


@pytest.mark.parametrize("name, bounded", [("tensorrt", True), ("tensorrt-rtx", True),
                                           ("onnxruntime", False)])
def test_only_plans_bound_the_batch(name: str, bounded: bool) -> None:
    assert (plan_bound(BUILT, name) is BUILT) is bounded


def test_flags_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size must be at least 1"):
        BatchFlags(max_batch_size=0)
