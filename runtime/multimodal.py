"""Embedders for models that take images: one Batcher per tower, items answered in order.

Text rows go through the text tower's batcher as usual; images are fetched and decoded off
the event loop (runtime/media.py), preprocessed in numpy (runtime/images.py) and batched
on their own tower's batcher. Families differ in how an item becomes tower inputs: CLIP
embeds a text or an image per item (two towers, one space); GME (runtime/gme.py) runs
the vision tower first and feeds its output into the language tower with the text.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from runtime.backends.base import Backend
from runtime.batcher import BatchConfig, Batcher
from runtime.config import RuntimeConfig
from runtime.embedder import Embedder, EmbeddingResult
from runtime.backends.choose import load_backend
from runtime.errors import InvalidRequestError
from runtime.images import ClipPreprocessor, read_preprocessor
from runtime.manifest import Manifest
from runtime.media import load_image


class ImageRow:
    """One image on a tower's batcher; len() is its cost in the token budget."""

    def __init__(self, data: Any, tokens: int):
        self.data = data
        self.tokens = tokens

    def __len__(self) -> int:
        return self.tokens


class MultimodalEmbedder(Embedder, ABC):
    def __init__(self, artifact: str | Path, manifest: Manifest, backend: Backend,
                 config: RuntimeConfig, image_backend: Backend):
        super().__init__(artifact, manifest, backend, config)
        self.image_backend = image_backend
        self.preprocessor_config = read_preprocessor(self.artifact)
        self.image_batcher = Batcher(self._run_images, self.image_batch_config())
        self._media_pool = ThreadPoolExecutor(config.media.threads, thread_name_prefix="media")

    @classmethod
    def load(cls, artifact: str | Path, config: RuntimeConfig) -> "MultimodalEmbedder":
        manifest = Manifest.load(artifact)
        text = load_backend(Path(artifact), manifest, config, "text")
        image = load_backend(Path(artifact), manifest, config, "image")
        return cls(artifact, manifest, text, config, image)

    async def start(self) -> None:
        await super().start()
        self.image_batcher.start()
        await self._embed_images([Image.new("RGB", (32, 32))])  # warm-up

    async def close(self) -> None:
        await self.image_batcher.stop()
        self._media_pool.shutdown(wait=False)
        self.image_backend.close()
        await super().close()

    async def load_images(self, sources: Sequence[str]) -> list[Image.Image]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(
            loop.run_in_executor(self._media_pool, load_image, s, self.config.media)
            for s in sources)))

    def image_batch_config(self) -> BatchConfig:
        return self.config.batch

    @abstractmethod
    def _run_images(self, rows: list[ImageRow]) -> Any:
        """One image-tower batch (on the batcher's thread): one result per row."""

    @abstractmethod
    async def _embed_images(self, images: list[Image.Image]) -> Any:
        """Decoded images -> what the family's items need from the image tower."""


class ClipEmbedder(MultimodalEmbedder):
    """Each item is a text or an image; both land in the same space."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.preprocess = ClipPreprocessor(self.preprocessor_config)
        size = self.preprocess.crop
        assert self.spec.vision is not None
        patch = self.spec.vision.patch_size
        self._image_tokens = (size[0] // patch) * (size[1] // patch) + 1

    def _run_images(self, rows: list[ImageRow]) -> np.ndarray:
        return self.image_backend.embed({"pixel_values": np.stack([r.data for r in rows])})

    async def _embed_images(self, images: list[Image.Image]) -> tuple[np.ndarray, int]:
        loop = asyncio.get_running_loop()
        pixels = await asyncio.gather(*(loop.run_in_executor(self._media_pool, self.preprocess, i)
                                        for i in images))
        vectors = await self.image_batcher.submit([ImageRow(p, self._image_tokens) for p in pixels])
        return vectors, self._image_tokens * len(images)

    async def embed_items(self, items: Sequence[Any], *, truncate: bool = False,
                          prompt_name: str | None = None,
                          dimensions: int | None = None) -> EmbeddingResult:
        self.check_dimensions(dimensions)
        both = next((i for i, it in enumerate(items) if it.text is not None and it.image is not None),
                    None)
        if both is not None:
            raise InvalidRequestError(
                f"input[{both}] has both text and an image; CLIP embeds one or the other per "
                "item (send them as two items).", param="input", code="unsupported_input")
        texts = [i for i, it in enumerate(items) if it.image is None]
        images = [i for i, it in enumerate(items) if it.image is not None]
        pictures = await self.load_images([items[i].image for i in images])
        parts = await asyncio.gather(
            self.embed_texts([items[i].text for i in texts], truncate=truncate,
                             prompt_name=prompt_name) if texts else _nothing(),
            self._embed_images(pictures) if images else _nothing())
        out = np.zeros((len(items), self.spec.dims), dtype=np.float32)
        if texts:
            out[texts] = parts[0].vectors
        if images:
            out[images] = parts[1][0]
        tokens = (parts[0].prompt_tokens if texts else 0) + (parts[1][1] if images else 0)
        return self.finish(out, tokens, dimensions)


async def _nothing() -> None:
    return None


def load_multimodal(artifact: str | Path, manifest: Manifest,
                    config: RuntimeConfig) -> MultimodalEmbedder:
    """The embedder of a multi-tower artifact, by family."""
    if manifest.spec.family == "gme":
        from runtime.gme import GmeEmbedder

        return GmeEmbedder.load(artifact, config)
    return ClipEmbedder.load(artifact, config)
