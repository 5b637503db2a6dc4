"""The bulk command's sparse and multi-vector outputs: SPLADE's weights against
SparseEncoder, bge-m3's lexical weights and ColBERT vectors against FlagEmbedding's
computation, as Parquet list columns, row by row in input order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from runtime.bulk.chunks import EmbedSettings
from runtime.bulk.local import BulkJob, run_local
from runtime.bulk.sources import Source
from tests.fixtures.flag_m3 import flag_m3
from tests.helpers import ROOT
from tests.integration.runtime.test_bulk import corpus, read_output, write_jsonl

ROWS = corpus(30)  # 1 to 40 words each, mixed lengths, and three bad rows
GOOD = [(key, text) for key, text in ROWS if isinstance(text, str) and text]
ATOL = 1e-5


def bulk(source: Path, out: Path, artifact: Path, output: str | None) -> pa.Table:
    settings = EmbedSettings(threads=2, truncate=True, output=output, max_batch_tokens=512)
    run_local(BulkJob(Source.of(source, "text", "id"), out, artifact, settings, 8,
                      progress=False))
    table = read_output(out)
    assert table.column("id").to_pylist() == sorted(key for key, _ in GOOD)
    return table


def by_id(table: pa.Table, column: str) -> dict[str, Any]:
    return dict(zip(table.column("id").to_pylist(), table.column(column).to_pylist()))


def test_splade_writes_its_nonzero_weights(heads_paths: dict[str, Path],
                                           heads_artifacts: dict[str, Path],
                                           tmp_path: Path) -> None:
    """Through `python -m runtime.bulk` as a user runs it: SPLADE's default output."""
    from sentence_transformers import SparseEncoder

    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    done = subprocess.run(
        [sys.executable, "-m", "runtime.bulk", str(source), str(tmp_path / "out"),
         "--model-path", str(heads_artifacts["splade"]), "--truncate", "--chunk-rows", "8",
         "--id-column", "id", "--no-progress"], cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr
    table = read_output(tmp_path / "out")
    assert table.schema.field("indices").type == pa.list_(pa.int32())
    assert table.schema.field("values").type == pa.list_(pa.float32())
    want = SparseEncoder(str(heads_paths["splade"]), device="cpu").encode(
        [t for _, t in GOOD], convert_to_tensor=True).to_dense().numpy()
    indices, values = by_id(table, "indices"), by_id(table, "values")
    for (key, _), dense in zip(GOOD, want):
        nonzero = np.flatnonzero(dense)
        assert indices[key] == nonzero.tolist(), key
        np.testing.assert_allclose(values[key], dense[nonzero], atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def flag(heads_paths: dict[str, Path]) -> dict[str, Any]:
    return flag_m3(heads_paths["bge_m3"], [t for _, t in GOOD])


def test_bge_m3_lexical_weights(heads_artifacts: dict[str, Path], flag: dict[str, Any],
                                tmp_path: Path) -> None:
    table = bulk(write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out",
                 heads_artifacts["bge_m3"], "sparse")
    indices, values = by_id(table, "indices"), by_id(table, "values")
    for (key, _), want in zip(GOOD, flag["lexical_weights"]):
        assert [str(i) for i in indices[key]] == sorted(want, key=int), key
        np.testing.assert_allclose(values[key], [want[str(i)] for i in indices[key]],
                                   atol=ATOL, rtol=0)


def test_bge_m3_colbert_vectors(heads_artifacts: dict[str, Path], flag: dict[str, Any],
                                tmp_path: Path) -> None:
    table = bulk(write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out",
                 heads_artifacts["bge_m3"], "multi_vector")
    assert table.schema.field("vectors").type == pa.list_(pa.list_(pa.float32(), 32))
    vectors, tokens = by_id(table, "vectors"), by_id(table, "tokens")
    for (key, _), want in zip(GOOD, flag["colbert_vecs"]):
        assert len(vectors[key]) == tokens[key] - 1 == len(want), key  # less the CLS
        np.testing.assert_allclose(vectors[key], want, atol=ATOL, rtol=0)


def test_a_dense_model_refuses_sparse_in_one_line(minilm_artifact: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ROWS[:3])
    done = subprocess.run(
        [sys.executable, "-m", "runtime.bulk", str(source), str(tmp_path / "out"),
         "--model-path", str(minilm_artifact), "--embedding-output", "sparse"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "--embedding-output: This model has no sparse output; it gives dense" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("prompt_name", [None, "query"])
def test_colbert_documents_and_queries(heads_paths: dict[str, Path],
                                       heads_artifacts: dict[str, Path], tmp_path: Path,
                                       prompt_name: str | None) -> None:
    """A ColBERT's token vectors, as documents (the default) or as queries (--prompt-name
    query: marker and expansion), as PyLate encodes them."""
    from tests.fixtures.pylate_colbert import pylate_encode

    settings = EmbedSettings(threads=2, truncate=True, prompt_name=prompt_name,
                             max_batch_tokens=512)
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    run_local(BulkJob(Source.of(source, "text", "id"), tmp_path / "out",
                      heads_artifacts["colbert"], settings, 8, progress=False))
    table = read_output(tmp_path / "out")
    assert table.schema.field("vectors").type == pa.list_(pa.list_(pa.float32(), 16))
    vectors = by_id(table, "vectors")
    want = pylate_encode(heads_paths["colbert"], [t for _, t in GOOD],
                         is_query=prompt_name == "query")
    for (key, _), tokens in zip(GOOD, want):
        assert np.shape(vectors[key]) == tokens.shape, key
        np.testing.assert_allclose(vectors[key], tokens, atol=ATOL, rtol=0)
