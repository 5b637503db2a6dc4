"""Shared test helpers: compare vectors, scrape a server; starting servers and building
artifacts come from devtools/helpers.py (the benchmarks use them too), re-exported here."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import httpx
import numpy as np

from devtools.helpers import (ROOT, build_artifact, decode_embeddings, free_port,  # noqa: F401
                              minilm_checkpoint, running_server, server_pid, wait_healthy)


def in_flight(url: str) -> float:
    """The server's trt_embed_requests_in_flight gauge (this scrape counts itself)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    line = next(ln for ln in text.splitlines() if ln.startswith("trt_embed_requests_in_flight"))
    return float(line.split()[-1])


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def assert_parity(ours: np.ndarray, reference: np.ndarray, min_cosine: float = 0.9999) -> None:
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    cos = cosine_rows(ours, reference)
    assert cos.min() >= min_cosine, f"min cosine {cos.min():.6f} < {min_cosine}: {cos}"


def st_reference(checkpoint: str | Path, texts: Sequence[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(checkpoint), device="cpu")
    return model.encode(list(texts), normalize_embeddings=True, batch_size=32)


def family_reference(checkpoint: str | Path,
                     items: Sequence[tuple[str | None, str | None]]) -> np.ndarray:
    """The family's own reference implementation (builder/families) on (text, photo name)
    items; photos come from tests/fixtures/media_server.photo_path."""
    from PIL import Image

    from builder import families
    from models.registry import resolve
    from tests.fixtures.media_server import photo_path

    family, spec = resolve(checkpoint)
    pairs = [(text, Image.open(photo_path(name)) if name else None) for text, name in items]
    return families.reference(family, checkpoint, spec, pairs)


def assert_served_texts_match(url: str, checkpoint: str | Path, texts: Sequence[str],
                              min_cosine: float = 0.9999) -> None:
    """Plain strings through the server's /v1/embeddings against family_reference."""
    r = httpx.post(f"{url}/v1/embeddings", json={"input": list(texts)}, timeout=120)
    assert r.status_code == 200, r.text
    assert_parity(decode_embeddings(r.json()),
                  family_reference(checkpoint, [(t, None) for t in texts]), min_cosine)
