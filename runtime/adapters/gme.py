"""GME (Qwen2-VL): the vision tower first, then the language tower with the text.

Every item becomes one prompt through the `gme-qwen2-vl` chat template, with the image's
<|image_pad|> expanded to one token per merged patch. Images are batched on the vision
tower (packed patches, one segment per image), rows on the language tower (right padding,
mrope positions, an index mapping image-pad tokens to rows of the image embeddings).
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import numpy as np
from PIL import Image

from models.gme import prompt as gme_prompt
from runtime.adapters.base import (IMAGE, TEXT, Capability, CostedRow, Embedding, Item,
                                   Stages, Tower, Work)
from runtime.artifact import Artifact
from runtime.backends.base import pad_batch
from runtime.errors import ArtifactError, InvalidRequestError
from runtime.adapters.images import QwenVisionPreprocessor, read_preprocessor
from runtime.adapters.qwen2_vl import Grid, mrope_positions, pack_vision
from runtime.tokenizer import TextTokenizer

IMAGE_PAD = "<|image_pad|>"
Embedded = tuple[np.ndarray, Grid]  # an image's (tokens, dims) embeddings and its grid


class LmRow:
    """One prompt on the language tower's batcher; len() is its token count."""

    def __init__(self, ids: list[int], positions: np.ndarray, image: np.ndarray | None):
        self.ids = ids
        self.positions = positions  # (3, len)
        self.image = image  # (image tokens, dims) or None

    def __len__(self) -> int:
        return len(self.ids)


class GmeAdapter(Embedding):
    capabilities = frozenset({Capability.EMBED_TEXT, Capability.EMBED_IMAGES})

    def __init__(self, artifact: Artifact, tokenizer: TextTokenizer):
        super().__init__(artifact, tokenizer)
        vision = self.spec.vision
        if vision is None:
            raise ArtifactError(f"{artifact.path}: the spec of a GME model has no vision facts")
        self.merge = vision.spatial_merge_size
        # The spec's range: the checkpoint's own, or GME's scripts' (--gme-image-range).
        self.preprocess = QwenVisionPreprocessor({
            **read_preprocessor(artifact.preprocessor_path),
            "min_pixels": vision.min_pixels, "max_pixels": vision.max_pixels})
        image_token_id = tokenizer.token_id(IMAGE_PAD)
        if image_token_id is None:
            raise ArtifactError(f"{artifact.path}: the tokenizer has no {IMAGE_PAD} token")
        self.image_token_id = image_token_id
        # The vision tower's batches are capped at one largest image's patches
        # (runtime/pipeline/limits.py: packed images).
        self.towers = (Tower(TEXT), Tower(IMAGE))

    async def prepare_texts(self, texts: Sequence[str], prompt: str, truncate: bool,
                            stages: Stages) -> Work:
        return await self.prepare([Item(text=t) for t in texts], prompt, truncate, stages)

    async def prepare(self, items: Sequence[Any], prompt: str, truncate: bool,
                      stages: Stages) -> Work:
        """GME's instruction is part of its chat template; its spec has no named prompts,
        so `prompt` is always empty here."""
        with_image = [i for i, item in enumerate(items) if item.image is not None]
        pictures = await stages.load_images([items[i].image for i in with_image])
        embedded = dict(zip(with_image, await self._embed_images(pictures, stages)))
        prompts = [self._prompt_for(item.text, embedded.get(i)) for i, item in enumerate(items)]
        encoded = await stages.tokenize(prompts, truncate)
        return Work({TEXT: [self._row(i, ids, embedded.get(i)) for i, ids in enumerate(encoded)]})

    async def _embed_images(self, images: list[Image.Image], stages: Stages) -> list[Embedded]:
        """Per image: the embeddings of its <|image_pad|> tokens, and its grid."""
        prepared = await stages.off_loop(self.preprocess, images)
        outs = await asyncio.gather(*(stages.submit(IMAGE, [CostedRow(p, len(p[0]))])
                                      for p in prepared))
        return [(out[0], grid) for out, (_, grid) in zip(outs, prepared)]

    def _prompt_for(self, text: str | None, image: Embedded | None) -> str:
        body = gme_prompt(text, image is not None)
        return body.replace(IMAGE_PAD, IMAGE_PAD * len(image[0])) if image is not None else body

    def _row(self, index: int, ids: list[int], image: Embedded | None) -> LmRow:
        if image is not None and ids.count(self.image_token_id) != len(image[0]):
            raise InvalidRequestError(
                f"input[{index}] is longer than this model's maximum of {self.spec.max_len} "
                "tokens with its image; an image cannot be truncated.",
                param="input", code="context_length_exceeded")
        grids = [image[1]] if image is not None else []
        return LmRow(ids, mrope_positions(ids, self.image_token_id, grids, self.merge),
                     image[0] if image is not None else None)

    def feeds(self, tower: str, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        if tower == IMAGE:
            return pack_vision([row.data for row in rows], self.merge)
        return self._language_feeds([r if isinstance(r, LmRow) else _plain_row(r) for r in rows])

    def split(self, tower: str, rows: Sequence[Any], output: np.ndarray) -> Any:
        if tower != IMAGE:
            return output
        sizes = np.cumsum([len(row.data[0]) // self.merge ** 2 for row in rows])[:-1]
        return np.split(output, sizes)  # each image's merged tokens

    def _language_feeds(self, rows: list[LmRow]) -> dict[str, np.ndarray]:
        ids, mask = pad_batch([r.ids for r in rows])
        positions = np.zeros((3, *ids.shape), dtype=np.int64)
        index = np.zeros(ids.shape, dtype=np.int64)
        tables, offset = [], 1  # index 0: a text token
        for b, row in enumerate(rows):
            positions[:, b, :len(row)] = row.positions
            if row.image is not None:
                where = np.flatnonzero(np.asarray(row.ids) == self.image_token_id)
                index[b, where] = offset + np.arange(len(where))
                offset += len(where)
                tables.append(row.image)
        embeds = (np.concatenate(tables) if tables
                  else np.zeros((0, self.spec.dims), dtype=np.float32))
        return {"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                "image_index": index, "image_embeds": embeds.astype(np.float32)}

    async def warm_up(self, stages: Stages) -> None:
        await super().warm_up(stages)
        await self._embed_images([Image.new("RGB", (32, 32))], stages)


def _plain_row(ids: Sequence[int]) -> LmRow:
    """Token-id inputs: used as given, 1-D positions on all three axes."""
    return LmRow(list(ids), np.broadcast_to(np.arange(len(ids)), (3, len(ids))), None)
