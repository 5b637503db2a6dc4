"""--context-length and --json-model-override-args as SGLang reads them (pure)."""

from __future__ import annotations

import pytest

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
