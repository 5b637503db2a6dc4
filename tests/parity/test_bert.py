"""BERT-like parity: the bundled all-MiniLM-L6-v2, built and served, against
sentence-transformers in fp32: awkward texts in one batch and one by one, and SGLang's prompts
within SGLang's 1e-5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.parity_prompts import assert_sglang_parity, fitted
from tests.helpers import assert_parity, decode_embeddings, st_reference
from tests.integration.server.test_server import TEXTS, embed


@pytest.fixture(scope="module")
def reference(minilm_path: Path) -> np.ndarray:
    return st_reference(minilm_path, TEXTS)


def test_parity_in_one_batch(minilm_server: str, reference: np.ndarray) -> None:
    r = embed(minilm_server, input=TEXTS, model="anything")
    assert r.status_code == 200
    body = r.json()
    # (The response's `model` is the server's behaviour, asserted in tests/integration/server.)
    assert body["object"] == "list"
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    assert all(d["object"] == "embedding" for d in body["data"])
    assert_parity(decode_embeddings(body), reference)


def test_parity_one_by_one(minilm_server: str, reference: np.ndarray) -> None:
    rows = [decode_embeddings(embed(minilm_server, input=t).json())[0] for t in TEXTS]
    assert_parity(np.stack(rows), reference)


def test_sglang_prompts_within_1e_5(minilm_server: str, minilm_path: Path,
                                    minilm_artifact: Path) -> None:
    prompts = fitted(minilm_server, minilm_artifact)
    r = embed(minilm_server, input=prompts)
    assert r.status_code == 200, r.text
    assert_sglang_parity(decode_embeddings(r.json()), st_reference(minilm_path, prompts))
