"""Pair tokenising (the model's own pair template; the document cut, never the query) and
the cross-encoder adapter's feeds, on the tiny cross-encoder's WordPiece tokenizer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from models.spec import AdapterKind, ModelSpec
from runtime.adapters.cross_encoder import CrossEncoderAdapter, PairRow
from runtime.errors import InvalidRequestError
from runtime.tokenizer import TextTokenizer
from devtools.checkpoints.tiny_cross_encoder import _wordpiece

QUERY = "what is the capital of france?"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> TextTokenizer:
    path = tmp_path_factory.mktemp("wordpiece") / "tokenizer.json"
    _wordpiece().save(str(path))
    return TextTokenizer(path, max_len=16)


def test_pairs_follow_the_template(tokenizer: TextTokenizer) -> None:
    (ids, types), = tokenizer.encode_pairs(QUERY, ["a cat"], truncate=False)
    query = tokenizer.ids([QUERY])[0]  # [CLS] query [SEP]
    assert ids[:len(query)] == query and len(ids) == len(types)
    assert types == [0] * len(query) + [1] * (len(ids) - len(query))


def test_long_document_is_400_or_cut_keeping_the_query(tokenizer: TextTokenizer) -> None:
    doc = "the quick brown fox " * 10
    with pytest.raises(InvalidRequestError) as info:
        tokenizer.encode_pairs(QUERY, ["short", doc], truncate=False)
    assert (info.value.param, info.value.code) == ("documents", "context_length_exceeded")
    assert "documents[1]" in info.value.message
    short, (ids, types) = tokenizer.encode_pairs(QUERY, ["short", doc], truncate=True)
    query = tokenizer.ids([QUERY])[0]
    assert len(ids) == 16 and ids[:len(query)] == query and types[-1] == 1
    assert short == tokenizer.encode_pairs(QUERY, ["short"], truncate=False)[0]


def test_query_alone_past_the_maximum_is_400(tokenizer: TextTokenizer) -> None:
    with pytest.raises(InvalidRequestError) as info:
        tokenizer.encode_pairs("the quick brown fox " * 10, ["a"], truncate=True)
    assert info.value.param == "query"


def adapter(tokenizer: TextTokenizer, inputs: tuple[str, ...]) -> CrossEncoderAdapter:
    spec = ModelSpec(family="cross_encoder", architecture="BertForSequenceClassification",
                     pooling="cls", dims=1, max_len=16, normalize=False, inputs=inputs,
                     adapter=AdapterKind.CROSS_ENCODER, score_activation="sigmoid")
    artifact: Any = SimpleNamespace(spec=spec)
    return CrossEncoderAdapter(artifact, tokenizer)


def test_feeds_pad_ids_mask_and_token_types(tokenizer: TextTokenizer) -> None:
    rows = [PairRow([2, 5, 3, 7, 3], [0, 0, 0, 1, 1]), PairRow([2, 5, 3], [0, 0, 1])]
    feeds = adapter(tokenizer, ("input_ids", "attention_mask", "token_type_ids")).feeds(
        "text", rows)
    np.testing.assert_array_equal(feeds["token_type_ids"], [[0, 0, 0, 1, 1], [0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(feeds["attention_mask"], [[1] * 5, [1, 1, 1, 0, 0]])
    assert len(rows[0]) == 5  # a pair's cost: query and document tokens together
    plain = adapter(tokenizer, ("input_ids", "attention_mask")).feeds("text", rows)
    assert set(plain) == {"input_ids", "attention_mask"}
