"""CLIP: each item is a text or an image, embedded by its own tower into one shared space.

Images are fetched and decoded off the event loop (runtime/adapters/media.py), preprocessed in
numpy (runtime/adapters/images.py) and batched on the image tower; an image costs its patches plus
the class token in that tower's token budget and in the request's usage.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image

from runtime.adapters.base import (IMAGE, TEXT, Capability, CostedRow, Embedding, Stages,
                                   Tower, Work)
from runtime.artifact import Artifact
from runtime.errors import ArtifactError
from runtime.adapters.images import ClipPreprocessor, read_preprocessor
from runtime.tokenizer import TextTokenizer


class ClipAdapter(Embedding):
    capabilities = frozenset({Capability.EMBED_TEXT, Capability.PLAIN_TEXT_ROWS,
                              Capability.EMBED_IMAGES})
    towers = (Tower(TEXT), Tower(IMAGE))

    def __init__(self, artifact: Artifact, tokenizer: TextTokenizer):
        super().__init__(artifact, tokenizer)
        if self.spec.vision is None:
            raise ArtifactError(f"{artifact.path}: the spec of a CLIP model has no vision facts")
        self.preprocess = ClipPreprocessor(read_preprocessor(artifact.preprocessor_path))
        height, width = self.preprocess.crop
        patch = self.spec.vision.patch_size
        self.image_tokens = (height // patch) * (width // patch) + 1

    async def prepare(self, items: Sequence[Any], prompt: str, truncate: bool,
                      stages: Stages) -> Work:
        texts = [i for i, item in enumerate(items) if item.image is None]
        images = [i for i, item in enumerate(items) if item.image is not None]
        pictures = await stages.load_images([items[i].image for i in images])
        text_rows = (await self.prepare_texts([items[i].text for i in texts], prompt, truncate,
                                              stages)).rows[TEXT] if texts else []
        return Work({TEXT: text_rows, IMAGE: await self._image_rows(pictures, stages)},
                    slots={TEXT: texts, IMAGE: images})

    async def _image_rows(self, pictures: list[Image.Image], stages: Stages) -> list[CostedRow]:
        pixels = await stages.off_loop(self.preprocess, pictures)
        return [CostedRow(p, self.image_tokens) for p in pixels]

    def feeds(self, tower: str, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        if tower == IMAGE:
            return {"pixel_values": np.stack([row.data for row in rows])}
        return super().feeds(tower, rows)

    async def warm_up(self, stages: Stages) -> None:
        await super().warm_up(stages)
        await stages.submit(IMAGE, await self._image_rows([Image.new("RGB", (32, 32))], stages))
