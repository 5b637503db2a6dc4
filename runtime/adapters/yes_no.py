"""Yes/no rerankers (Qwen3-Reranker): each (query, document) pair becomes the model's judging
prompt, PREFIX + "<Instruct>: ...<Query>: ...<Document>: ..." + SUFFIX (models/
qwen3_reranker.py), tokenised piecewise as its model card does; the graph answers P(yes).

An over-long pair has the end of its middle cut (the document comes last), never the
prefix, the query or the suffix; a query that leaves no room is a 400.
"""

from __future__ import annotations

from typing import Any, Sequence

from models import qwen3_reranker as card
from runtime.adapters.base import TEXT, PairScoring, Stages, Work
from runtime.artifact import Artifact
from runtime.errors import ArtifactError, InvalidRequestError
from runtime.tokenizer import TextTokenizer


class YesNoRerankerAdapter(PairScoring):
    def __init__(self, artifact: Artifact, tokenizer: TextTokenizer):
        super().__init__(artifact, tokenizer)
        self.prefix, self.suffix = tokenizer.ids([card.PREFIX, card.SUFFIX],
                                                 add_special_tokens=False)
        self.room = self.spec.max_len - len(self.prefix) - len(self.suffix)
        if self.room < 1:
            raise ArtifactError(f"{artifact.path}: the judging prompt alone fills the "
                                f"model's maximum of {self.spec.max_len} tokens")

    async def prepare_pairs(self, query: str, documents: Sequence[str], truncate: bool,
                            stages: Stages, instruction: str | None = None) -> Work:
        middles = [card.middle(query, d, instruction) for d in documents]
        bodies = self.tokenizer.ids(middles, add_special_tokens=False)
        over = [i for i, body in enumerate(bodies) if len(body) > self.room]
        if over and not truncate:
            raise InvalidRequestError(
                f"documents[{over[0]}] with the query and the prompt has "
                f"{len(bodies[over[0]]) + self.spec.max_len - self.room} tokens, more than "
                f"this model's maximum of {self.spec.max_len}.", param="documents",
                code="context_length_exceeded")
        if over:
            self._check_query_fits(query, instruction)
        return Work({TEXT: [self.prefix + body[:self.room] + self.suffix for body in bodies]})

    def _check_query_fits(self, query: str, instruction: str | None) -> None:
        (head,) = self.tokenizer.ids([card.middle(query, "", instruction)],
                                     add_special_tokens=False)
        if len(head) >= self.room:
            raise InvalidRequestError(
                f"The query leaves no room for a document within this model's maximum of "
                f"{self.spec.max_len} tokens; the query is never truncated. Shorten it.",
                param="query", code="context_length_exceeded")
