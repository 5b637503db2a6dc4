"""Qwen3-Embedding (e.g. Qwen/Qwen3-Embedding-4B): Qwen3 decoder, last-token pooling.

Its tokenizer.json appends <|endoftext|> through the post-processor, so the saved tokenizer
reproduces it as is. Trained with Matryoshka representation learning: `dimensions` is
allowed. Prompts (`query`: "Instruct: ...\\nQuery:") come from
config_sentence_transformers.json.
"""

from __future__ import annotations

from models.decoder import DecoderTraits, family

TRAITS = DecoderTraits(
    name="qwen3",
    description="Qwen3-Embedding: Qwen3 decoder, last-token pooling, Matryoshka dimensions",
    architectures=("Qwen3ForCausalLM", "Qwen3Model"),
    matryoshka=True,
)

FAMILY = family(TRAITS)
