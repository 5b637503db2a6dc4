"""Qwen2-VL position maths on the host (numpy), fed to the exported graphs as inputs.

Qwen2-VL computes these from `grid_thw` in Python loops, which a traced export would freeze
into one image's constants: the vision tower's (h, w) rotary positions in merge-block order
with a per-image segment id (attention stays inside one image), and the language model's
multimodal rotary positions (mrope): text tokens advance one step on all three axes, an
image's tokens take (t, h, w) offsets on the merged grid, after which text resumes at
start + max(h, w) / merge.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Grid = tuple[int, int, int]  # (t, h, w) in patches


def vision_positions(grid: Grid, merge: int) -> np.ndarray:
    """(t * h * w, 2) int64 (row, column) of every patch, in the patchifier's order."""
    t, h, w = grid
    rows = np.broadcast_to(np.arange(h)[:, None], (h, w))
    cols = np.broadcast_to(np.arange(w)[None, :], (h, w))
    shape = (h // merge, merge, w // merge, merge)
    rows = rows.reshape(shape).transpose(0, 2, 1, 3).reshape(-1)
    cols = cols.reshape(shape).transpose(0, 2, 1, 3).reshape(-1)
    return np.tile(np.stack([rows, cols], axis=-1), (t, 1)).astype(np.int64)


def pack_vision(items: Sequence[tuple[np.ndarray, Grid]], merge: int) -> dict[str, np.ndarray]:
    """Several images' patches packed in one sequence, with positions and segment ids."""
    return {
        "pixel_values": np.concatenate([p for p, _ in items]).astype(np.float32),
        "vision_pos": np.concatenate([vision_positions(g, merge) for _, g in items]),
        "segment": np.concatenate([np.full(len(p), i, dtype=np.int64)
                                   for i, (p, _) in enumerate(items)]),
    }


def mrope_positions(ids: Sequence[int], image_token_id: int, grids: Sequence[Grid],
                    merge: int) -> np.ndarray:
    """(3, len(ids)) int64, as Qwen2VLModel.get_rope_index computes for one unpadded row."""
    is_image = np.asarray(ids) == image_token_id
    out = np.zeros((3, len(ids)), dtype=np.int64)
    pos, start, grid_iter = 0, 0, iter(grids)
    while start < len(ids):
        end = start
        while end < len(ids) and is_image[end] == is_image[start]:
            end += 1
        if not is_image[start]:
            out[:, start:end] = np.arange(end - start) + pos
            pos += end - start
        else:
            t, h, w = next(grid_iter)
            gh, gw = h // merge, w // merge
            tt, hh, ww = np.meshgrid(np.arange(t), np.arange(gh), np.arange(gw), indexing="ij")
            out[:, start:end] = np.stack([tt.ravel(), hh.ravel(), ww.ravel()]) + pos
            pos += max(gh, gw)
        start = end
    return out
