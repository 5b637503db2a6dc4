"""Classify and check the `input` field: text, token ids, or multimodal items."""

from __future__ import annotations

from typing import Any

from server.protocol import MultimodalItem, invalid

INPUT = "input"



def classify_input(value: Any, max_inputs: int) -> tuple[str, list]:
    """-> ("text", [str]) | ("tokens", [[int]]) | ("items", [MultimodalItem])."""
    if isinstance(value, str):
        value = [value]
    if not value:
        raise invalid("'input' must not be empty.", INPUT)
    if len(value) > max_inputs:
        raise invalid(f"'input' has {len(value)} items; at most {max_inputs} are allowed "
                       "per request.", INPUT)
    first = value[0]
    if isinstance(first, int):
        return "tokens", [list(value)]
    if isinstance(first, list):
        if any(len(row) == 0 for row in value):
            raise invalid("Token-id lists in 'input' must not be empty.", INPUT)
        return "tokens", [list(row) for row in value]
    if any(isinstance(v, MultimodalItem) for v in value):
        value = [v if isinstance(v, MultimodalItem) else MultimodalItem(text=v) for v in value]
        for i, item in enumerate(value):
            if item.text is None and item.image is None:
                raise invalid(f"input[{i}] needs a 'text' or an 'image'.", INPUT)
            if item.text == "":
                raise invalid(f"input[{i}].text must not be empty.", INPUT)
        return "items", list(value)
    # SGLang answers 400 for whitespace-only text too (serving_embedding.py _validate_request).
    empty = next((i for i, text in enumerate(value) if not text.strip()), None)
    if empty is not None:
        raise invalid(f"input[{empty}] is empty or whitespace only; every input must have "
                      "text.", INPUT)
    return "text", list(value)
