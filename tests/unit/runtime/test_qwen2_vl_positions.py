"""runtime/adapters/qwen2_vl.py against transformers' own Qwen2-VL position code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runtime.adapters.qwen2_vl import mrope_positions, pack_vision, vision_positions

PAD = 7  # the image-pad token id in these synthetic rows


@pytest.mark.parametrize("grid", [(1, 4, 4), (1, 6, 10), (1, 12, 2), (2, 4, 6)])
def test_vision_positions_match_transformers(grid: tuple[int, int, int]) -> None:
    from transformers.vision_utils import get_vision_position_ids

    expected = get_vision_position_ids(torch.tensor([grid]), 2).numpy()
    np.testing.assert_array_equal(vision_positions(grid, 2), expected)


def test_pack_vision_segments_images() -> None:
    a, b = np.ones((16, 6), np.float32), np.zeros((24, 6), np.float32)
    packed = pack_vision([(a, (1, 4, 4)), (b, (1, 4, 6))], 2)
    assert packed["pixel_values"].shape == (40, 6)
    assert packed["segment"].tolist() == [0] * 16 + [1] * 24
    np.testing.assert_array_equal(packed["vision_pos"][16:], vision_positions((1, 4, 6), 2))


@pytest.mark.parametrize("grid,before,after", [((1, 4, 4), 5, 3), ((1, 6, 10), 9, 12),
                                               ((1, 12, 2), 1, 1), ((1, 2, 2), 0, 4)])
def test_mrope_matches_get_rope_index(grid: tuple[int, int, int], before: int, after: int) -> None:
    from transformers import Qwen2VLConfig, Qwen2VLModel

    config = Qwen2VLConfig(text_config=dict(hidden_size=8, num_hidden_layers=1,
                                            num_attention_heads=2, num_key_value_heads=1,
                                            intermediate_size=8, vocab_size=16),
                           vision_config=dict(depth=1, embed_dim=8, num_heads=2, hidden_size=8),
                           image_token_id=PAD)
    n = grid[0] * grid[1] * grid[2] // 4
    ids = [1] * before + [PAD] * n + [2] * after
    model = Qwen2VLModel(config)
    tensor = torch.tensor([ids])
    expected, _ = model.get_rope_index(tensor, (tensor == PAD).int(), torch.tensor([grid]))
    np.testing.assert_array_equal(mrope_positions(ids, PAD, [grid], 2), expected[:, 0].numpy())


def test_text_only_positions_are_plain() -> None:
    np.testing.assert_array_equal(mrope_positions([1, 2, 3], PAD, [], 2),
                                  np.tile(np.arange(3), (3, 1)))
