"""The one activation-memory formula: what a transformer holds for one batch, used by the
builder (builder/memory.py: each TensorRT profile, the --gpu-memory-gib fit) and by the
server's start (server/memory_fit.py: the models' largest batches on ONNX Runtime). Pure.

Per token, 2 x (2 hidden + 3 intermediate) + 4 hidden values in the body's precision (each
layer's hidden- and intermediate-width tensors, twice, and its q/k/v/context) plus a head's
float32 values (SPLADE's vocabulary logits); where attention is not fused, rows x heads x
seq^2 scores three times in float32 (scores, masked scores, softmax: every precision keeps
softmax in float32) plus a body-precision copy. Layers reuse the memory: depth adds nothing.
"""

from __future__ import annotations


def activation_bytes(tokens: int, seq: int, hidden: int, intermediate: int, heads: int,
                     body_bytes: int, fused: bool, head_values: int = 0) -> int:
    """Bytes for one batch of `tokens` padded tokens in rows of `seq`."""
    total = tokens * (2 * (2 * hidden + 3 * intermediate) + 4 * hidden) * body_bytes
    total += tokens * head_values * 4
    return total if fused else total + score_cells(tokens, seq, heads) * (12 + body_bytes)


def score_cells(tokens: int, seq: int, heads: int) -> int:
    """Attention-score values of one batch: rows x heads x seq^2 (tokens = rows x seq)."""
    return tokens * seq * heads
