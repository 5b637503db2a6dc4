"""The image half of the parity gate: its threshold and its probes."""

from __future__ import annotations

import numpy as np

from builder.verify import IMAGE_MIN_COSINE, MIN_COSINE, Verification, compare
from builder.verify_items import probe_items
from models.spec import ModelSpec


def test_gate_needs_both_text_and_image_thresholds() -> None:
    assert Verification(1.0, 1.0, 3, image_min_cosine=1.0).passed
    assert not Verification(1.0, 1.0, 3, image_min_cosine=IMAGE_MIN_COSINE - 1e-4).passed
    assert not Verification(MIN_COSINE - 1e-5, 1.0, 3, image_min_cosine=1.0).passed
    assert Verification(1.0, 1.0, 3).to_dict()["image_threshold"] == IMAGE_MIN_COSINE


def test_cosine_alone_passes_a_normalised_graph_of_an_unnormalised_model_lengths_do_not() -> None:
    reference = np.random.default_rng(0).normal(0, 1, (4, 8)).astype(np.float32)
    normalised = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    result = compare(normalised, reference, MIN_COSINE)
    assert result.min_cosine >= MIN_COSINE  # the old gate's only question
    assert result.image_min_cosine is None  # text probes only
    assert not result.passed
    error = result.max_length_error
    assert error == float(np.abs(1 / np.linalg.norm(reference, axis=1) - 1).max())
    assert result.failures() == [
        f"vector lengths {error:.2e} from the reference's (needs <= 4.5e-03; does the graph "
        "normalise where the model does not, or the reverse?)"]
    assert compare(reference * (1 + 1e-6), reference, MIN_COSINE).passed


def test_image_probes_get_their_own_cosine_and_the_looser_length_tolerance() -> None:
    reference = np.eye(3, dtype=np.float32)
    ours = reference * np.array([[1.0], [1.0], [1.02]], dtype=np.float32)  # 2% long image
    result = compare(ours, reference, MIN_COSINE, image=np.array([False, False, True]))
    assert (result.min_cosine, result.image_min_cosine) == (1.0, 1.0)
    assert result.length_tolerance == float(np.sqrt(2 * (1 - IMAGE_MIN_COSINE)))
    assert result.passed and not compare(ours, reference, MIN_COSINE).passed


def test_probes_cover_each_modality_the_family_takes() -> None:
    def spec(family: str) -> ModelSpec:
        return ModelSpec(family=family, architecture="x", pooling="last", dims=4, max_len=8,
                         modalities=("text", "image"), items_mix_modalities=family == "gme")

    clip_pairs, clip_items = probe_items(spec("clip"))
    gme_pairs, _ = probe_items(spec("gme"))  # GME embeds text+image items as one
    assert not any(t is not None and i is not None for t, i in clip_pairs)
    assert sum(t is not None and i is not None for t, i in gme_pairs) == 2
    assert all(it.image.startswith("data:image/png;base64,") for it in clip_items if it.image)
    assert max(i.size[0] * i.size[1] for _, i in clip_pairs if i is not None) >= 400 * 300
