"""The serving pipeline: the Embedder facade (embedder.py), token-budget batching
(batcher.py, batch_plan.py), batch limits (limits.py), the backend call cost (calibrate.py),
the tokenize queue and backend selection (choose.py). The layer that joins the artifact, the
adapters and the backends."""
