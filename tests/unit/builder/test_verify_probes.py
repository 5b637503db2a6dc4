"""The parity gate's long probe: bounded memory, stated; truncation checked another way when
the full length does not fit."""

from __future__ import annotations

from builder.verify import PROBE_MEMORY, SCORE_BYTES, long_probe, probe_texts
from models.spec import ModelSpec


def spec(max_len: int) -> ModelSpec:
    return ModelSpec(family="qwen3", architecture="Qwen3ForCausalLM", pooling="last",
                     dims=1024, max_len=max_len)


def test_short_models_probe_past_max_len() -> None:
    probe = long_probe(spec(512), heads=16)  # bge-large: 16 x 520^2 x 12 bytes = 50 MiB
    assert probe.truncates and probe.words == 520
    assert "truncated" in probe.note
    assert probe_texts(spec(512), 16)[-1] == "long " * 520


def test_long_context_probe_is_bounded_and_says_so() -> None:
    """Qwen3-Embedding-0.6B: 16 heads, 32768 tokens: the old probe's attention alone was
    16 x 32768^2 floats (64 GiB per tensor); the kernel killed the build."""
    probe = long_probe(spec(32768), heads=16)
    assert not probe.truncates
    assert probe.words == 4672  # isqrt(4 GiB / (16 x 12)) = 4729, down to a multiple of 64
    assert 16 * probe.words ** 2 * SCORE_BYTES <= PROBE_MEMORY
    assert "192 GiB" in probe.note and "tokenizer alone" in probe.note
    assert long_probe(spec(32768), heads=32).words == 3328  # Qwen3-Embedding-4B: isqrt -> 3344
