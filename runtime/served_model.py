"""The spec as served: SGLang's launch flags that change what a request may ask.

Pure. SGLang 0.5.23 reads these in srt/configs/model_config.py:
- `--json-model-override-args` is a JSON object merged into the model's HF config; the
  keys that matter to an embedding server that compiled its pooling into the graph are
  `is_matryoshka` and `matryoshka_dimensions` (is_matryoshka = matryoshka_dimensions or
  is_matryoshka). Other keys (rope scaling, layer counts...) change the model itself, which
  here is a built graph: they are reported back as having no effect.
- `--context-length C`: SGLang rejects an input of >= C tokens (managers/
  tokenizer_manager.py, `input_token_num >= self.context_len`), so the longest accepted
  input is C - 1 tokens, and never more than the model's own maximum.
- Images (Qwen2-VL, GME) are resized within the checkpoint's preprocessor_config.json range,
  as SGLang's processor does; `--gme-image-range gme` serves GME's own scripts' range
  instead (min/max_image_tokens: 256..1280 merged tokens), the one GME's reference code
  and model-card scores use, and one that bounds the vision graph's work per image.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from models.spec import ModelSpec
from runtime.errors import ConfigError

MATRYOSHKA_KEYS = ("is_matryoshka", "matryoshka_dimensions")
IMAGE_RANGES = ("checkpoint", "gme")


def parse_overrides(text: str | None) -> dict[str, Any]:
    """--json-model-override-args -> a dict; not a JSON object -> ConfigError."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--json-model-override-args is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError("--json-model-override-args must be a JSON object")
    return value


def _sizes(value: Any, dims: int) -> tuple[int, ...]:
    if value is None:
        return ()
    if not (isinstance(value, list) and all(type(v) is int for v in value)):
        raise ConfigError("matryoshka_dimensions must be a list of integers")
    bad = [v for v in value if not 1 <= v <= dims]
    if bad:
        raise ConfigError(f"matryoshka_dimensions {bad} are outside 1..{dims}, this model's "
                          "embedding size")
    return tuple(value)


def _script_range(spec: ModelSpec) -> dict[str, Any]:
    """The vision facts with the model's own scripts' pixel range served."""
    vision = spec.vision
    if vision is None or not vision.script_max_pixels:
        raise ConfigError("--gme-image-range gme: this model has no image range of its own "
                          "(it is a GME option)")
    return {"vision": dataclasses.replace(vision, min_pixels=vision.script_min_pixels,
                                          max_pixels=vision.script_max_pixels)}


def served_spec(spec: ModelSpec, overrides: dict[str, Any], context_length: int | None,
                image_range: str = "checkpoint") -> tuple[ModelSpec, list[str]]:
    """(the spec requests are checked against, the override keys that have no effect)."""
    changes: dict[str, Any] = _script_range(spec) if image_range == "gme" else {}
    if "matryoshka_dimensions" in overrides:
        changes["matryoshka_dimensions"] = _sizes(overrides["matryoshka_dimensions"],
                                                  spec.dims)
    sizes = changes.get("matryoshka_dimensions", spec.matryoshka_dimensions)
    if "is_matryoshka" in overrides or "matryoshka_dimensions" in overrides:
        changes["matryoshka"] = bool(sizes) or bool(overrides.get("is_matryoshka"))
    if context_length is not None:
        if context_length < 2:
            raise ConfigError(f"--context-length {context_length}: inputs must be shorter "
                              "than the context length, so it must be at least 2")
        changes["max_len"] = min(spec.max_len, context_length - 1)
    ignored = sorted(k for k in overrides if k not in MATRYOSHKA_KEYS)
    return dataclasses.replace(spec, **changes), ignored
