"""GME (Qwen2-VL) serving: the vision tower, then the language tower with the text.

Every item becomes one prompt through the `gme-qwen2-vl` chat template, with the image's
<|image_pad|> expanded to one token per merged patch. Images are batched on the vision
tower (packed patches, one segment per image), rows on the language tower (right padding,
mrope positions, an index mapping image-pad tokens to rows of the image embeddings).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
from PIL import Image

from models.gme import prompt
from runtime.backends.base import pad_batch
from runtime.batcher import BatchConfig
from runtime.embedder import EmbeddingResult
from runtime.errors import ArtifactError, InvalidRequestError
from runtime.images import QwenVisionPreprocessor
from runtime.multimodal import ImageRow, MultimodalEmbedder
from runtime.qwen2_vl import Grid, mrope_positions, pack_vision

IMAGE_PAD = "<|image_pad|>"


class LmRow:
    """One prompt on the language tower's batcher; len() is its token count."""

    def __init__(self, ids: list[int], positions: np.ndarray, image: np.ndarray | None):
        self.ids = ids
        self.positions = positions  # (3, len)
        self.image = image  # (image tokens, dims) or None

    def __len__(self) -> int:
        return len(self.ids)


class GmeEmbedder(MultimodalEmbedder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        from tokenizers import Tokenizer

        vision = self.spec.vision
        assert vision is not None
        self.merge = vision.spatial_merge_size
        # GME's image-token range (min/max_image_tokens), not preprocessor_config.json's.
        self.preprocess = QwenVisionPreprocessor({**self.preprocessor_config,
                                                  "min_pixels": vision.min_pixels,
                                                  "max_pixels": vision.max_pixels})
        vocab = Tokenizer.from_file(str(self.artifact / self.manifest.tokenizer))
        self.image_token_id = vocab.token_to_id(IMAGE_PAD)
        if self.image_token_id is None:
            raise ArtifactError(f"{self.artifact}: the tokenizer has no {IMAGE_PAD} token")

    def image_batch_config(self) -> BatchConfig:
        """Packed images attend within one (n x n) sequence: n is capped at one largest
        image's patches (5120 for GME's 1280 tokens), so small images share a batch, large
        ones run alone, and the attention scores stay bounded."""
        assert self.spec.vision is not None
        return replace(self.config.batch, max_batch_tokens=self.spec.vision.max_patches)

    def _run_images(self, rows: list[ImageRow]) -> list[np.ndarray]:
        merged = self.image_backend.embed(pack_vision([r.data for r in rows], self.merge))
        sizes = np.cumsum([len(r.data[0]) // self.merge ** 2 for r in rows])[:-1]
        return np.split(merged, sizes)

    async def _embed_images(self, images: list[Image.Image]) -> list[tuple[np.ndarray, Grid]]:
        """Per image: (tokens, dims) embeddings for its <|image_pad|> tokens, and its grid."""
        loop = asyncio.get_running_loop()
        prepared = await asyncio.gather(*(
            loop.run_in_executor(self._media_pool, self.preprocess, i) for i in images))
        outs = await asyncio.gather(*(self.image_batcher.submit([ImageRow(p, len(p[0]))])
                                      for p in prepared))
        return [(out[0], grid) for out, (_, grid) in zip(outs, prepared)]

    def _run_batch(self, rows: list[Any]) -> np.ndarray:
        rows = [r if isinstance(r, LmRow) else _plain_row(r) for r in rows]
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
        return self.backend.embed({"input_ids": ids, "attention_mask": mask,
                                   "position_ids": positions, "image_index": index,
                                   "image_embeds": embeds.astype(np.float32)})

    async def embed_texts(self, texts: Sequence[str], *, truncate: bool = False,
                          prompt_name: str | None = None,
                          dimensions: int | None = None) -> EmbeddingResult:
        return await self.embed_items([_Text(t) for t in texts], truncate=truncate,
                                      prompt_name=prompt_name, dimensions=dimensions)

    async def embed_items(self, items: Sequence[Any], *, truncate: bool = False,
                          prompt_name: str | None = None,
                          dimensions: int | None = None) -> EmbeddingResult:
        self.check_dimensions(dimensions)
        if prompt_name is not None:
            self._prompt(prompt_name)  # GME has no named prompts: a clear 400
        with_image = [i for i, it in enumerate(items) if it.image is not None]
        pictures = await self.load_images([items[i].image for i in with_image])
        embedded = dict(zip(with_image, await self._embed_images(pictures) if pictures else []))
        prompts = [self._prompt_for(it.text, embedded.get(i)) for i, it in enumerate(items)]
        truncate = truncate or self.config.allow_auto_truncate
        loop = asyncio.get_running_loop()
        encoded = await loop.run_in_executor(self._tok_pool, self.tokenizer.encode, prompts,
                                             truncate)
        rows = [self._row(i, ids, embedded.get(i)) for i, ids in enumerate(encoded)]
        return await self._embed_rows(rows, dimensions)  # type: ignore[arg-type]

    def _prompt_for(self, text: str | None, image: Any) -> str:
        body = prompt(text, image is not None)
        return body.replace(IMAGE_PAD, IMAGE_PAD * len(image[0])) if image is not None else body

    def _row(self, index: int, ids: list[int], image: Any) -> LmRow:
        grids = [image[1]] if image is not None else []
        if image is not None and ids.count(self.image_token_id) != len(image[0]):
            raise InvalidRequestError(
                f"input[{index}] is longer than this model's maximum of {self.spec.max_len} "
                "tokens with its image; an image cannot be truncated.",
                param="input", code="context_length_exceeded")
        return LmRow(ids, mrope_positions(ids, self.image_token_id, grids, self.merge),
                     image[0] if image is not None else None)


class _Text:
    image = None

    def __init__(self, text: str):
        self.text = text


def _plain_row(ids: Sequence[int]) -> LmRow:
    """Token-id inputs: used as given, 1-D positions on all three axes."""
    return LmRow(list(ids), np.broadcast_to(np.arange(len(ids)), (3, len(ids))), None)
