"""--chunk-long-inputs and --chunk-overlap reach the runtime config (off and the default
fraction unless given), on the server's and the bulk command's parsers alike."""

from __future__ import annotations

from runtime.artifact import Artifact
from runtime.bulk.__main__ import parser as bulk_parser
from tests.unit.server.test_reliability_flags import (artifact, clean_env,  # noqa: F401
                                                       config_for)


def test_chunking_is_off_by_default(artifact: Artifact) -> None:  # noqa: F811
    cfg = config_for(artifact)
    assert cfg.runtime.chunk_long_inputs is False and cfg.runtime.chunk_overlap is None


def test_chunk_flags_reach_the_runtime(artifact: Artifact) -> None:  # noqa: F811
    cfg = config_for(artifact, "--chunk-long-inputs", "--chunk-overlap", "16")
    assert cfg.runtime.chunk_long_inputs is True and cfg.runtime.chunk_overlap == 16


def test_bulk_takes_the_same_flags_and_embedding_types() -> None:
    args = bulk_parser().parse_args(["in.jsonl", "out", "--model-path", "m",
                                     "--chunk-long-inputs", "--chunk-overlap", "8",
                                     "--embedding-types", "int8", "ubinary"])
    assert (args.chunk_long_inputs, args.chunk_overlap) == (True, 8)
    assert args.embedding_types == ["int8", "ubinary"]
    assert bulk_parser().parse_args(["i", "o", "--model-path", "m"]).embedding_types == ["float"]
