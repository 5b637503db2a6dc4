"""Text families (BERT-like encoders, decoder embedders): one text tower, a row per text."""

from __future__ import annotations

from typing import Any, Sequence

from runtime.adapters.base import Capability, Embedding, Stages, Work


class TextAdapter(Embedding):
    capabilities = frozenset({Capability.EMBED_TEXT, Capability.PLAIN_TEXT_ROWS,
                              Capability.TRUNCATE_LEFT})

    async def prepare(self, items: Sequence[Any], prompt: str, truncate: bool,
                      stages: Stages) -> Work:
        """Text items only (the pipeline refuses images for a text-only spec)."""
        return await self.prepare_texts([item.text for item in items], prompt, truncate, stages)
