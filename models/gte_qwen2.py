"""gte-Qwen2 (e.g. Alibaba-NLP/gte-Qwen2-7B-instruct): Qwen2 decoder, last-token pooling.

Every Qwen2 decoder checkpoint (Qwen2ForCausalLM, Qwen2Model) is served by this family:
config.json cannot tell gte-Qwen2 from a plain Qwen2 LLM (both say Qwen2ForCausalLM), and
last-token pooling over the appended <|endoftext|> is also what SGLang applies to a Qwen2
model run with --is-embedding. 1_Pooling/config.json, when present, wins.

Attention follows config.json: causal unless it says `is_causal: false` (the gte-Qwen2
lineage's bidirectional variants); transformers 5 honours that flag natively, so the
export and the sentence-transformers reference agree. Not Matryoshka-trained.
"""

from __future__ import annotations

from models.decoder import DecoderTraits, family

TRAITS = DecoderTraits(
    name="gte_qwen2",
    description="gte-Qwen2 (and any Qwen2 decoder): last-token pooling",
    architectures=("Qwen2ForCausalLM", "Qwen2Model"),
)

FAMILY = family(TRAITS)
