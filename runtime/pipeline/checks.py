"""A request's checks that need only the model's spec: Matryoshka `dimensions`, the
modalities of `{text, image}` items, and the prompt a `prompt_name` prepends. Pure; the
Embedder runs them before any work (runtime/pipeline/embedder.py)."""

from __future__ import annotations

from typing import Any, Sequence

from models.spec import ModelSpec
from runtime.errors import InvalidRequestError


def check_dimensions(spec: ModelSpec, dimensions: int | None) -> None:
    """`dimensions` where the model is Matryoshka, within its sizes; else 400."""
    if dimensions is None:
        return
    if not spec.matryoshka:
        raise InvalidRequestError(
            f"This model does not support the 'dimensions' parameter: it was not trained "
            f"for shortened embeddings (its size is {spec.dims}).",
            param="dimensions", code="unsupported_parameter")
    # 400 as in SGLang (managers/tokenizer_manager.py _validate_for_matryoshka_dim):
    # below 1, outside the configured sizes, above the embedding size.
    sizes = spec.matryoshka_dimensions
    if not 1 <= dimensions <= spec.dims or (sizes and dimensions not in sizes):
        allowed = (f"one of {list(sizes)}" if sizes
                   else f"between 1 and {spec.dims}")
        raise InvalidRequestError(
            f"'dimensions' must be {allowed}, got {dimensions}.",
            param="dimensions", code="invalid_value")


def check_items(spec: ModelSpec, items: Sequence[Any]) -> None:
    """`{text, image}` items against the model's modalities; else 400."""
    if "image" not in spec.modalities:
        if any(item.image is not None for item in items):
            raise InvalidRequestError("This model does not accept images; send text inputs.",
                                      param="input", code="unsupported_modality")
        return
    both = next((i for i, item in enumerate(items)
                 if item.text is not None and item.image is not None), None)
    if both is not None and not spec.items_mix_modalities:
        raise InvalidRequestError(
            f"input[{both}] has both text and an image; this model embeds one or the other "
            "per item (send them as two items).", param="input", code="unsupported_input")


def prompt_for(spec: ModelSpec, prompt_name: str | None) -> str:
    """The text a request's prompt_name prepends (the default prompt for None); an
    unknown name: 400."""
    if prompt_name is None:
        name = spec.default_prompt_name
        return (spec.prompt(name) or "") if name else ""
    prompt = spec.prompt(prompt_name)
    if prompt is None:
        known = ", ".join(name for name, _ in spec.prompts) or "none"
        raise InvalidRequestError(
            f"Unknown prompt_name {prompt_name!r}; this model's prompts: {known}.",
            param="prompt_name", code="invalid_value")
    return prompt
