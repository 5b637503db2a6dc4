"""The image half of the parity gate: its threshold and its probes."""

from __future__ import annotations

from builder.verify import IMAGE_MIN_COSINE, MIN_COSINE, Verification
from builder.verify_items import probe_items
from models.spec import ModelSpec


def test_gate_needs_both_text_and_image_thresholds() -> None:
    assert Verification(1.0, 1.0, 3, image_min_cosine=1.0).passed
    assert not Verification(1.0, 1.0, 3, image_min_cosine=IMAGE_MIN_COSINE - 1e-4).passed
    assert not Verification(MIN_COSINE - 1e-5, 1.0, 3, image_min_cosine=1.0).passed
    assert Verification(1.0, 1.0, 3).to_dict()["image_threshold"] == IMAGE_MIN_COSINE


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
