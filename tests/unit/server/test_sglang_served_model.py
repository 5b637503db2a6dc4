"""--context-length, --json-model-override-args and --gme-image-range as SGLang reads
them (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import gme
from models.checkpoint import CheckpointInfo
from models.spec import ModelSpec
from runtime.errors import ConfigError
from runtime.served_model import parse_overrides, served_spec

MINILM = ModelSpec(family="bert", architecture="BertModel", pooling="mean", dims=384,
                   max_len=256)


def test_no_flags_change_nothing() -> None:
    assert served_spec(MINILM, {}, None) == (MINILM, [])


def test_matryoshka_sizes_turn_it_on_and_other_keys_are_reported() -> None:
    overrides = parse_overrides('{"is_matryoshka": true, "matryoshka_dimensions": [128, 256],'
                                ' "rope_scaling": {"factor": 2}}')
    spec, ignored = served_spec(MINILM, overrides, None)
    assert (spec.matryoshka, spec.matryoshka_dimensions) == (True, (128, 256))
    assert ignored == ["rope_scaling"]


def test_sizes_alone_mean_matryoshka_and_false_turns_it_off() -> None:
    # model_config.py: is_matryoshka = matryoshka_dimensions or is_matryoshka
    assert served_spec(MINILM, {"matryoshka_dimensions": [64]}, None)[0].matryoshka
    qwen3 = ModelSpec(family="qwen3", architecture="Qwen3Model", pooling="last", dims=64,
                      max_len=512, matryoshka=True)
    assert not served_spec(qwen3, {"is_matryoshka": False}, None)[0].matryoshka
    assert served_spec(MINILM, {"is_matryoshka": True}, None)[0].matryoshka_dimensions == ()


@pytest.mark.parametrize(("context_length", "max_len"), [(100, 99), (257, 256), (10_000, 256)])
def test_context_length_rejects_at_c_tokens_never_past_the_model(context_length: int,
                                                                 max_len: int) -> None:
    assert served_spec(MINILM, {}, context_length)[0].max_len == max_len


@pytest.mark.parametrize(("text", "context_length"), [
    ("[1]", None), ("{", None), ('{"matryoshka_dimensions": [0]}', None),
    ('{"matryoshka_dimensions": [385]}', None), ('{"matryoshka_dimensions": "128"}', None),
    ("{}", 1), ("{}", 0),
])
def test_unservable_values_fail_at_startup(text: str, context_length: int | None) -> None:
    with pytest.raises(ConfigError):
        served_spec(MINILM, parse_overrides(text), context_length)


def gme_info(preprocessor: dict) -> CheckpointInfo:
    config = {"architectures": ["Qwen2VLForConditionalGeneration"], "hidden_size": 64,
              "max_position_embeddings": 4096, "vision_config": {"patch_size": 14,
                                                                 "spatial_merge_size": 2}}
    return CheckpointInfo(path=Path("gme"), config=config, modules=[], pooling_config={},
                          st_config={}, bert_config={}, tokenizer_config={},
                          preprocessor_config=preprocessor)


def test_gme_images_are_sized_by_the_checkpoint_by_default() -> None:
    """gme-Qwen2-VL-2B's preprocessor_config.json: 3136..12845056 pixels (4..16384 tokens),
    which SGLang's processor uses, its top capped at GME's scripts' 1280 tokens (the eager
    vision attention's memory); GME's scripts: 256..1280 tokens of 28 x 28 pixels."""
    spec = gme.make_spec(gme_info({"min_pixels": 3136, "max_pixels": 12845056}))
    assert spec.vision is not None
    assert (spec.vision.min_pixels, spec.vision.max_pixels) == (3136, 1280 * 28 * 28)
    assert spec.vision.max_patches == 5120
    assert (spec.vision.script_min_pixels, spec.vision.script_max_pixels) == (
        256 * 28 * 28, 1280 * 28 * 28)
    # min/max_pixels win over `size`, which is the fallback (Qwen2VLImageProcessor).
    sized = gme.make_spec(gme_info({"size": {"shortest_edge": 100, "longest_edge": 200}}))
    assert sized.vision is not None and (sized.vision.min_pixels, sized.vision.max_pixels) == (
        100, 200)
    served, _ = served_spec(spec, {}, None, "gme")
    assert served.vision is not None
    assert (served.vision.min_pixels, served.vision.max_pixels) == (200704, 1003520)
    assert served_spec(spec, {}, None)[0] == spec
    with pytest.raises(ConfigError):
        served_spec(MINILM, {}, None, "gme")
