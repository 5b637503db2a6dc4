"""Cross-encoder parity: the tiny BERT cross-encoder, built and served, against
sentence-transformers' CrossEncoder.predict within 1e-4, through all three rerank shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests

QUERY = "What is the capital of France?"
DOCS = [
    "The quick brown fox jumps over the lazy dog.",
    "a",
    "Ünïcödé façade — naïve café, 中文字符 🙂",
    "Embeddings map text to vectors so that similar meanings land close together. " * 3,
    "long " * 80,  # past the 64-token maximum: the document is cut, never the query
    "A photo of an astronaut, a cat, a cup of coffee and a rocket.",
]


@pytest.fixture(scope="module")
def reference(reranker_paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid scores, raw logits) from CrossEncoder.predict."""
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(reranker_paths["cross_encoder"]), device="cpu")
    pairs = [(QUERY, d) for d in DOCS]
    scores = model.predict(pairs, convert_to_numpy=True)
    raw = model.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    return np.asarray(scores), np.asarray(raw)


def by_index(rows: list[dict], key: str) -> np.ndarray:
    return np.array([row[key] for row in sorted(rows, key=lambda r: r["index"])])


def test_sglang_shape_matches_cross_encoder(cross_encoder_server: str,
                                            reference: tuple[np.ndarray, np.ndarray]) -> None:
    r = requests.post(cross_encoder_server + "/v1/rerank",
                      json={"query": QUERY, "documents": DOCS}, timeout=60)
    assert r.status_code == 200, r.text
    scores, _ = reference
    np.testing.assert_allclose(by_index(r.json(), "score"), scores, atol=1e-4, rtol=0)
    assert np.ptp(scores) > 0.01  # the tiny model tells documents apart


def test_tei_raw_scores_match_the_logits(cross_encoder_server: str,
                                         reference: tuple[np.ndarray, np.ndarray]) -> None:
    r = requests.post(cross_encoder_server + "/rerank",
                      json={"query": QUERY, "texts": DOCS, "raw_scores": True}, timeout=60)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(by_index(r.json(), "score"), reference[1], atol=1e-4, rtol=0)


def test_one_by_one_matches_the_batch(cross_encoder_server: str,
                                      reference: tuple[np.ndarray, np.ndarray]) -> None:
    single = [requests.post(cross_encoder_server + "/v2/rerank",
                            json={"query": QUERY, "documents": [d]}, timeout=60).json()
              ["results"][0]["relevance_score"] for d in DOCS]
    np.testing.assert_allclose(single, reference[0], atol=1e-4, rtol=0)


def test_classify_gives_each_texts_own_logit(cross_encoder_server: str,
                                            reranker_paths: dict[str, Path]) -> None:
    """SGLang's /classify on a sequence-classification model: each text alone, its raw class
    logit in /encode's shape; the reference is transformers' own forward pass."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = reranker_paths["cross_encoder"]
    model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    texts = DOCS[:4]
    with torch.no_grad():
        want = [model(**tokenizer(t, return_tensors="pt")).logits[0].tolist() for t in texts]
    one = requests.post(cross_encoder_server + "/classify", json={"text": texts[0]}).json()
    assert set(one) == {"embedding", "meta_info"}
    np.testing.assert_allclose(one["embedding"], want[0], atol=1e-4)
    many = requests.post(cross_encoder_server + "/classify", json={"text": texts}).json()
    np.testing.assert_allclose([m["embedding"] for m in many], want, atol=1e-4)
    assert [m["meta_info"]["prompt_tokens"] for m in many] == [
        len(tokenizer(t)["input_ids"]) for t in texts]
