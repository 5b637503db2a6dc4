"""The parity gate for families that take images: the artifact, served by the runtime's own
embedder (media decoding, numpy preprocessing, every tower), against the reference on text,
image and text+image probes. Text must reach MIN_COSINE, images IMAGE_MIN_COSINE."""

from __future__ import annotations

import asyncio
import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from builder import families
from builder.verify import PROBES, Verification, compare
from models.family import Family
from models.spec import ModelSpec


@dataclass(frozen=True)
class Item:
    text: str | None = None
    image: str | None = None  # a data URI, as a client would send it


def probe_images() -> list[Any]:
    """Deterministic pictures of several sizes and aspect ratios (gradients and noise); the
    last is large enough that every family scales it down."""
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for width, height in ((64, 48), (40, 90), (33, 33), (120, 70), (400, 300)):
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
        noisy = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(noisy, "RGB"))
    return out


def data_uri(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def probe_items(spec: ModelSpec) -> tuple[list[tuple[Any, Any]], list[Item]]:
    images = probe_images()
    pairs: list[tuple[Any, Any]] = [(t, None) for t in PROBES] + [(None, i) for i in images]
    if spec.items_mix_modalities:  # else (CLIP) one modality per item
        pairs += [(t, i) for t, i in zip(PROBES[:2], images[:2])]
    return pairs, [Item(t, data_uri(i) if i is not None else None) for t, i in pairs]


async def _serve(artifact: Path, items: list[Item]) -> np.ndarray:
    from runtime.config import RuntimeConfig
    from runtime.pipeline.embedder import Embedder

    embedder = Embedder.load(artifact, RuntimeConfig())
    await embedder.start()
    try:
        return (await embedder.embed_items(items, truncate=True)).vectors
    finally:
        await embedder.close()


def verify(family: Family, checkpoint: str | Path, spec: ModelSpec, artifact: Path,
           precision: str = "fp32") -> Verification:
    from builder import precision as precisions

    pairs, items = probe_items(spec)
    ours = asyncio.run(_serve(artifact, items))
    reference = families.reference(family, checkpoint, spec, pairs)
    image = np.array([image is not None for _, image in pairs])
    return compare(ours, reference, precisions.get(precision).min_cosine, image=image)
