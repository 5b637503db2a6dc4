"""Bulk embedding of a corpus: `python -m runtime.bulk IN OUT --model-path M`.

The same artifact, tokenizer, batcher and backend as the server (runtime.pipeline.embedder.Embedder),
without HTTP. The input (JSONL, CSV or Parquet) is read as a stream and cut into chunks of
`--chunk-rows` input rows; chunk k becomes output part k (Parquet: id, vector as a
fixed-size float32 list, tokens) and its rejects (JSONL: row, id, reason). A part is
committed by an atomic rename and a line in the state file, keyed by the input's and the
artifact's fingerprints: an interrupted run restarts at the first uncommitted part, and a
second run over the same input and artifact does nothing.

Vectors depend on which rows share a batch (padding changes the last bit of a float), so a
chunk's rows are planned once, as one set (Embedder.embed_planned): its batches are a pure
function of its rows, the same on one machine and on every Ray actor
(runtime/bulk/ray_engine.py), however many run at once, and the two engines write identical
bytes. On CPU, `--threads` one-thread batches run at once (faster than one batch on every
thread: BENCHMARKS.md, bulk).

Modules: deps (lazy optional imports), sources (streamed readers), chunks (one chunk ->
rows and rejects), state (fingerprints, parts, resume), local (the one-process engine),
ray_engine (an actor pool on Ray), __main__ (flags).
"""
