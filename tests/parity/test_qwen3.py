"""Qwen3-Embedding parity: the served tiny checkpoint against sentence-transformers, in fp32;
SGLang's prompts within SGLang's 1e-5. The cases live in tests/fixtures/decoder_server.py."""

from __future__ import annotations

from typing import Callable

import pytest

from tests.fixtures.decoder_server import (  # noqa: F401  (collected here)
    Served, test_mixed_length_batch_matches_reference,
    test_one_by_one_matches_reference_and_the_batch, test_sglang_prompts_within_1e_5)


@pytest.fixture(scope="module")
def served(decoder_servers: Callable[[str], Served]) -> Served:
    return decoder_servers("qwen3")
