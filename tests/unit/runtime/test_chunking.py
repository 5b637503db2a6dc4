"""runtime/pipeline/chunking.py: windows, special tokens, overlap bounds and the pooling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.errors import InvalidRequestError
from runtime.pipeline.chunking import Chunker, affixes, chunker_for, pool, split_long
from runtime.tokenizer import TextTokenizer
from tests.helpers import minilm_checkpoint


@pytest.fixture(scope="module")
def tokenizer() -> TextTokenizer:
    return TextTokenizer(Path(minilm_checkpoint()) / "tokenizer.json", 16)


def test_windows_cover_the_text_with_the_overlap() -> None:
    chunker = Chunker((101,), (102,), 12, 3)  # 10 tokens of text per chunk, step 7
    assert chunker.width == 10
    assert chunker.windows(10) == [(0, 10)]
    assert chunker.windows(11) == [(0, 10), (7, 11)]
    assert chunker.windows(24) == [(0, 10), (7, 17), (14, 24)]
    assert chunker.windows(25) == [(0, 10), (7, 17), (14, 24), (21, 25)]
    rows = chunker.split(list(range(25)))
    assert rows[1] == [101, *range(7, 17), 102] and all(len(r) <= 12 for r in rows)


def test_bert_affixes_and_split_of_a_long_text(tokenizer: TextTokenizer) -> None:
    assert affixes(tokenizer) == ((101,), (102,))
    text = " ".join(f"word{i}" for i in range(30))
    own = tokenizer.ids([text], False)[0]
    chunker = chunker_for(tokenizer, None)  # width 14, default overlap 14 // 8 = 1
    assert chunker.overlap == 1
    (pieces,) = split_long(chunker, tokenizer, [text], tokenizer.encode_raw([text]))
    assert [r[1:-1] for r in pieces] == [own[s:e] for s, e in chunker.windows(len(own))]
    assert all(r[0] == 101 and r[-1] == 102 and len(r) <= 16 for r in pieces)
    assert split_long(chunker, tokenizer, ["short"], tokenizer.encode_raw(["short"])) == [
        tokenizer.encode_raw(["short"])]


@pytest.mark.parametrize("overlap", [-1, 14, 100])
def test_overlap_outside_the_width_is_400(tokenizer: TextTokenizer, overlap: int) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chunker_for(tokenizer, overlap)
    assert caught.value.param == "chunk_overlap" and "between 0 and 13" in caught.value.message


def test_pool_weights_chunks_by_their_tokens() -> None:
    vectors = np.array([[1, 0], [0, 1], [3, 4], [0, 2]], dtype=np.float32)
    pieces = [[[0] * 6, [0] * 2], [[0] * 5], [[0] * 4]]  # 2 chunks (6 and 2 tokens), 1, 1
    raw = pool(vectors, pieces, normalize=False)
    assert np.allclose(raw[0], [0.75, 0.25])  # (6 * [1, 0] + 2 * [0, 1]) / 8
    assert np.array_equal(raw[1:], vectors[2:])  # one chunk: the vector unchanged
    normed = pool(vectors, pieces, normalize=True)
    assert np.allclose(normed[0], np.array([0.75, 0.25]) / np.hypot(0.75, 0.25))
    assert np.array_equal(normed[1:], vectors[2:])
