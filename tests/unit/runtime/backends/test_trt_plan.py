"""Pure TensorRT helpers (profiles themselves: test_profiles.py): profile choice over named
axes, sequence buckets, manifest compatibility."""

from __future__ import annotations

import pytest

from builder.profiles import plan_profiles
from models.spec import ModelSpec
from runtime.pipeline.batcher import BatchConfig, plan_batches
from runtime.errors import ApplianceError, ArtifactError
from runtime.backends.trt_plan import (Machine, Profile, RunPlan, ShapeRange, TrtRecord,
                                       axis_extents, batch_axes, check_compatible, numpy_dtype,
                                       plan_run, seq_buckets, split_rows)


TEXT = {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]}


def choose_profile(profiles: tuple[Profile, ...], seq: int) -> int:
    """plan_run's profile for a one-row text batch padded to `seq`."""
    return plan_run(profiles, TEXT, {name: (1, seq) for name in TEXT}).profile


def spec(max_len: int) -> ModelSpec:
    return ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=384,
                     max_len=max_len)


def test_profile_round_trip_and_buckets() -> None:
    profiles = plan_profiles(spec(8192), 32, 8192)
    again = tuple(Profile.from_dict(p.to_dict()) for p in profiles)
    assert again == profiles
    assert seq_buckets(profiles, TEXT) == (128, 256, 512, 1024, 2048, 4096, 8192)


def test_choose_tightest_profile() -> None:
    profiles = plan_profiles(spec(8192), 64, 16384)
    assert [choose_profile(profiles, s) for s in (1, 128, 129, 1024, 1025, 8192)] == \
        [0, 0, 1, 3, 4, 6]
    with pytest.raises(ApplianceError, match="8193"):
        choose_profile(profiles, 8193)


@pytest.mark.parametrize("max_len, budget, lengths", [
    (512, 4096, [3, 120, 128, 129, 130, 500, 512, 7, 300, 64] * 12),
    (1800, 16384, [1800, 1025, 1024, 513, 900, 40, 257, 129, 1700] * 20),
    (32768, 16384, [32768, 16385, 16384, 9000, 4097, 2049, 3000, 1] * 5)])
def test_batcher_batches_fit_one_profile_each(max_len: int, budget: int,
                                              lengths: list[int]) -> None:
    """With the engine's buckets the batcher never mixes rows of two profiles, and a batch
    never exceeds its profile's max batch (so never its box) when the budgets match the
    build's: the long buckets' small boxes hold every batch the batcher makes."""
    profiles = plan_profiles(spec(max_len), 64, budget)
    cfg = BatchConfig(max_batch_tokens=budget, max_batch_size=64,
                      seq_buckets=seq_buckets(profiles, TEXT))
    for batch in plan_batches(lengths, cfg):
        width = max(lengths[i] for i in batch)
        profile = profiles[choose_profile(profiles, width)]
        assert all(profile.fits(lengths[i]) for i in batch)
        assert len(batch) <= profile.max_batch


def test_split_rows() -> None:
    assert split_rows(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert split_rows(2, 64) == [(0, 2)]


PLAN = TrtRecord(flavour="tensorrt", version="11.4.0.106", compute_capabilities=("9.0",),
                 precision="fp16", plans={}, gpu_name="NVIDIA H100 80GB HBM3")
RTX = TrtRecord(flavour="tensorrt-rtx", version="1.7.1.116",
                compute_capabilities=("8.0", "8.6", "8.9", "12.0"), precision="fp16", plans={})


def trt11(version: str, gpu: str, cc: str) -> Machine:
    return Machine(gpu, cc, {"tensorrt": version})


def test_compatible_plan_passes_and_other_card_warns() -> None:
    assert check_compatible(PLAN, trt11("11.4.0.106", "NVIDIA H100 80GB HBM3", "9.0")) == []
    (warning,) = check_compatible(PLAN, trt11("11.4.0.106", "NVIDIA H100 PCIe", "9.0"))
    assert "NVIDIA H100 PCIe" in warning


def test_mismatch_is_one_clear_error() -> None:
    with pytest.raises(ArtifactError) as err:
        check_compatible(PLAN, trt11("11.5.0.1", "NVIDIA L4", "8.9"))
    message = str(err.value)
    assert "tensorrt 11.4.0.106" in message and "11.5.0.1" in message
    assert "compute capability 9.0" in message and "(NVIDIA L4) is 8.9" in message
    assert "--backend tensorrt-rtx --compute-capability 8.9" in message


def test_rtx_plan_on_a_hopper_card_is_refused_with_the_build_to_run() -> None:
    h200 = Machine("NVIDIA H200", "9.0", {"tensorrt": "11.4.0.106", "tensorrt-rtx": "1.7.1.116"})
    with pytest.raises(ArtifactError) as err:
        check_compatible(RTX, h200)
    message = str(err.value)
    assert "8.0, 8.6, 8.9, 12.0" in message and "is 9.0" in message
    assert "not a TensorRT for RTX target" in message and "--backend tensorrt" in message
    l4 = Machine("NVIDIA L4", "8.9", {"tensorrt-rtx": "1.7.1.116"})
    assert check_compatible(RTX, l4) == []


def test_record_round_trips() -> None:
    record = TrtRecord.from_dict(RTX.to_dict())
    assert record == RTX


def ranges(**shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> tuple:
    return tuple((k, ShapeRange(lo, lo, hi)) for k, (lo, hi) in shapes.items())


MROPE: dict[str, list] = {"input_ids": ["batch", "sequence"], "position_ids": [3, "batch", "sequence"]}
MROPE_PROFILES = (Profile("short", ranges(input_ids=((1, 1), (8, 128)),
                                          position_ids=((3, 1, 1), (3, 8, 128))), ""),
                  Profile("long", ranges(input_ids=((1, 129), (2, 1024)),
                                         position_ids=((3, 1, 129), (3, 2, 1024))), ""))
GME_TEXT: dict[str, list] = {"input_ids": ["batch", "sequence"], "image_embeds": ["image_tokens", 64]}
GME_PROFILES = (Profile("short", ranges(input_ids=((1, 1), (4, 256)),
                                        image_embeds=((0, 64), (256, 64))), ""),
                Profile("long", ranges(input_ids=((1, 1), (1, 2048)),
                                       image_embeds=((0, 64), (1280, 64))), ""))


def test_plan_run_splits_along_each_inputs_batch_axis() -> None:
    assert batch_axes(MROPE) == {"input_ids": 0, "position_ids": 1}
    run = plan_run(MROPE_PROFILES, MROPE, {"input_ids": (19, 100), "position_ids": (3, 19, 100)})
    assert run == RunPlan(0, ((0, 8), (8, 16), (16, 19)))
    run = plan_run(MROPE_PROFILES, MROPE, {"input_ids": (3, 500), "position_ids": (3, 3, 500)})
    assert run == RunPlan(1, ((0, 2), (2, 3)))
    with pytest.raises(ApplianceError, match=r"position_ids \(3, 1, 1025\)"):
        plan_run(MROPE_PROFILES, MROPE, {"input_ids": (1, 1025), "position_ids": (3, 1, 1025)})


def test_plan_run_never_splits_a_graph_without_a_common_batch_axis() -> None:
    assert batch_axes(GME_TEXT) is None
    fit = {"input_ids": (4, 200), "image_embeds": (0, 64)}
    assert plan_run(GME_PROFILES, GME_TEXT, fit) == RunPlan(0, None)
    # 300 image tokens only fit the long profile, whose max batch is 1
    assert plan_run(GME_PROFILES, GME_TEXT, {"input_ids": (1, 400), "image_embeds": (300, 64)}) \
        == RunPlan(1, None)
    with pytest.raises(ApplianceError, match=r"no TensorRT profile takes input_ids \(2, 400\), "
                                             r"image_embeds \(300, 64\) \(short: input_ids"):
        plan_run(GME_PROFILES, GME_TEXT, {"input_ids": (2, 400), "image_embeds": (300, 64)})
    patches: dict[str, list] = {"pixel_values": ["patches", 1176]}  # GME's vision graph: by patches alone
    profiles = (Profile("all", ranges(pixel_values=((16, 1176), (5120, 1176))), ""),)
    assert plan_run(profiles, patches, {"pixel_values": (1024, 1176)}) == RunPlan(0, None)


def test_axis_extents_and_dtypes() -> None:
    assert axis_extents(GME_PROFILES, GME_TEXT, "batch") == (4, 1)
    assert axis_extents(GME_PROFILES, GME_TEXT, "image_tokens") == (256, 1280)
    assert axis_extents(GME_PROFILES, GME_TEXT, "sequence") == (256, 2048)
    assert axis_extents(GME_PROFILES, GME_TEXT, "patches") == ()
    assert numpy_dtype("HALF") == "float16" and numpy_dtype("INT32") == "int32"
    with pytest.raises(ArtifactError, match="BF16"):
        numpy_dtype("BF16")
