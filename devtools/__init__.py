"""Tools shared by the tests and the benchmarks, not part of the product: starting real
servers, building artifacts, and the checkpoints they are built from (tiny ones of every
family, and real-width ones). bench/ and tests/ both import these; neither imports the
other's modules (tests/unit/test_import_graph.py)."""
