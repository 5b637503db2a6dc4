"""E5-Mistral (e.g. intfloat/e5-mistral-7b-instruct): Mistral decoder, last-token pooling
over an appended </s>.

The model card tokenises to max_len - 1 and appends EOS by hand. Its tokenizer_config.json
asks for add_eos_token, but its tokenizer.json post-processor adds only <s>, and
transformers 5 keeps the post-processor: EOS would silently go missing. This family
therefore requires EOS (append_eos): the saved tokenizer.json is rebuilt as <s> $A </s>
and the reference is run with the same tokenizer settings.
"""

from __future__ import annotations

from models.decoder import DecoderTraits, family

TRAITS = DecoderTraits(
    name="e5_mistral",
    description="E5-Mistral: Mistral decoder, last-token pooling over an appended EOS",
    architectures=("MistralModel", "MistralForCausalLM"),
    append_eos=True,
)

FAMILY = family(TRAITS)
