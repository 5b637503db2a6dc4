"""The bulk command's quantized columns and chunked long texts (`python -m runtime.bulk`,
run through its main()), read back from the Parquet it writes: each type is
quantize_embeddings of the row's float vector with the manifest's ranges, bit for bit;
chunked rows are the reference model on the same chunks made by hand."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.bulk.__main__ import main
from tests.fixtures.chunk_reference import WIDTH, ByHand, long_text
from tests.helpers import assert_parity

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from sentence_transformers.util.quantization import quantize_embeddings

ARROW = {"vector": (pa.float32(), 384), "vector_int8": (pa.int8(), 384),
         "vector_uint8": (pa.uint8(), 384), "vector_binary": (pa.int8(), 48),
         "vector_ubinary": (pa.uint8(), 48)}


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(texts)))
    return path


def run(source: Path, out: Path, artifact: Path, *flags: str) -> int:
    return main([str(source), str(out), "--model-path", str(artifact), "--threads", "1",
                 "--chunk-rows", "8", "--no-progress", "--log-level", "warning", *flags])


def read(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))])


def column(table: pa.Table, name: str) -> np.ndarray:
    return np.stack(table.column(name).to_numpy(zero_copy_only=False))


def test_every_type_is_quantize_embeddings_of_the_rows_vector(minilm_artifact: Path,
                                                              tmp_path: Path) -> None:
    texts = [f"sentence {i}: " + long_text(5 + 7 * i, seed=i) for i in range(20)]
    out = tmp_path / "out"
    assert run(write_jsonl(tmp_path / "in.jsonl", texts), out, minilm_artifact,
               "--embedding-types", "float", "int8", "uint8", "binary", "ubinary") == 0
    table = read(out)
    assert table.column_names == ["id", *ARROW, "tokens"]
    for name, (element, size) in ARROW.items():
        assert table.schema.field(name).type == pa.list_(element, size), name
    vectors = column(table, "vector")
    record = json.loads((minilm_artifact / "manifest.json").read_text())["calibration"]
    ranges = np.array(record["ranges"], dtype=np.float32)
    for kind in ("int8", "uint8", "binary", "ubinary"):
        want = quantize_embeddings(vectors, kind, ranges=ranges)
        got = column(table, f"vector_{kind}")
        assert isinstance(want, np.ndarray)
        assert got.dtype == want.dtype and np.array_equal(got, want), kind


def test_quantized_only_and_a_changed_type_is_another_job(minilm_artifact: Path,
                                                          tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ["one text", "another text"])
    out = tmp_path / "out"
    assert run(source, out, minilm_artifact, "--embedding-types", "ubinary") == 0
    assert read(out).column_names == ["id", "vector_ubinary", "tokens"]
    assert run(source, out, minilm_artifact, "--embedding-types", "int8") == 1  # refused


def test_long_texts_are_chunked_as_by_hand(minilm_artifact: Path, minilm_path: Path,
                                           tmp_path: Path) -> None:
    texts = ["a short text", long_text(600, 1), long_text(420, 2), "another short one"]
    source = write_jsonl(tmp_path / "in.jsonl", texts)
    assert run(source, tmp_path / "plain", minilm_artifact) == 0  # the default: rejected
    assert read(tmp_path / "plain").column("id").to_pylist() == [0, 3]  # row numbers
    out = tmp_path / "chunked"
    assert run(source, out, minilm_artifact, "--chunk-long-inputs") == 0
    table = read(out)
    assert table.column_names == ["id", "vector", "tokens", "chunks"]
    by_hand = ByHand(minilm_path)
    chunks = [by_hand.chunks(t, WIDTH // 8) for t in texts]
    assert table.column("chunks").to_pylist() == [len(c) for c in chunks]
    assert table.column("tokens").to_pylist() == [sum(map(len, c)) for c in chunks]
    vectors = column(table, "vector")
    assert_parity(vectors[1:3], np.stack([by_hand.embed(t, WIDTH // 8) for t in texts[1:3]]))
    assert_parity(vectors[[0, 3]], by_hand.model.encode([texts[0], texts[3]]), 0.99999)


def test_command_refusals_are_one_line_exit_1(minilm_artifact: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ["text"])
    old = tmp_path / "old"
    shutil.copytree(minilm_artifact, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["calibration"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert run(source, tmp_path / "a", old, "--embedding-types", "uint8") == 1
    assert "--embedding-types: uint8 embeddings need" in caplog.text
    assert "rebuild" in caplog.text
    assert run(source, tmp_path / "b", minilm_artifact, "--chunk-long-inputs",
               "--truncate") == 1
    assert run(source, tmp_path / "c", minilm_artifact, "--chunk-long-inputs",
               "--chunk-overlap", "254") == 1
    assert "between 0 and 253" in caplog.text


def test_ray_writes_the_local_engines_typed_and_chunked_parts(minilm_artifact: Path,
                                                              tmp_path: Path) -> None:
    """--engine ray: the actors get the same settings, so the same bytes per part."""
    pytest.importorskip("ray")
    from runtime.bulk.chunks import EmbedSettings
    from runtime.bulk.local import BulkJob, run_local
    from runtime.bulk.ray_engine import RayOptions, run_ray
    from runtime.bulk.sources import Source

    texts = [long_text(40 + 90 * (i % 6), seed=i) for i in range(24)]
    source = Source.of(write_jsonl(tmp_path / "in.jsonl", texts), "text", "id")
    settings = EmbedSettings(threads=1, embedding_types=("int8", "binary"), chunking=True)
    outs = {}
    for engine in ("local", "ray"):
        job = BulkJob(source, tmp_path / engine, minilm_artifact, settings, 8, progress=False)
        if engine == "local":
            run_local(job)
        else:
            run_ray(job, RayOptions(actors=2, cpus_per_actor=1))
        outs[engine] = {p.name: p.read_bytes() for p in sorted((tmp_path / engine).glob(
            "part-*.parquet"))}
    assert len(outs["local"]) == 3 and outs["ray"] == outs["local"]
    assert read(tmp_path / "ray").column_names == ["id", "vector_int8", "vector_binary",
                                                   "tokens", "chunks"]
