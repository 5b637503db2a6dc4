"""The adapter registry and the pipeline's pure parts: tower batching limits, usage, order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.registry import FAMILIES
from models.spec import AdapterKind, ModelSpec
from runtime.adapters.base import IMAGE, TEXT, CostedRow, Work
from runtime.adapters.registry import ADAPTERS, adapter_for
from runtime.adapters.text import TextAdapter
from runtime.artifact import Artifact
from runtime.errors import ArtifactError
from runtime.artifact.manifest import Manifest

def test_every_family_names_an_adapter_the_runtime_has() -> None:
    assert {f.adapter for f in FAMILIES} == set(ADAPTERS)
    kinds = {f.name: f.adapter for f in FAMILIES}
    assert (kinds["bert"], kinds["clip"], kinds["gme"]) == ("text", "dual_tower", "vision_language")


def test_an_unknown_adapter_is_refused_naming_it(tmp_path: Path) -> None:
    """A kind this runtime lacks fails where the spec is made (a manifest's: ArtifactError,
    tests/integration/server/test_reliability_server.py), saying which kinds it serves."""
    with pytest.raises(ValueError, match="unknown adapter 'perceiver' \\(family "
                       "'perceiver-xl'\\); this runtime serves text, dual_tower, "):
        ModelSpec(family="perceiver-xl", architecture="P", pooling="cls", dims=4, max_len=8,
                  adapter="perceiver")  # type: ignore[arg-type]  # what a manifest can hold
    data = ModelSpec(family="perceiver-xl", architecture="P", pooling="cls", dims=4,
                     max_len=8).to_dict()
    assert data["adapter"] == "text"  # the manifest holds the kind's string
    assert ModelSpec.from_dict({**data, "adapter": "dual_tower"}).adapter is AdapterKind.DUAL_TOWER
    plain = Manifest(spec=ModelSpec(family="new-text-family", architecture="N", pooling="cls",
                                    dims=4, max_len=8), source={}, precision="fp32", opset=17,
                     graphs={}, versions={}, verification={})
    assert adapter_for(Artifact(tmp_path, plain)) is TextAdapter  # a new text family: no line here


def test_usage_counts_every_row_and_combine_restores_input_order() -> None:
    adapter = TextAdapter.__new__(TextAdapter)
    adapter.spec = ModelSpec(family="clip", architecture="C", pooling="cls", dims=2, max_len=8)
    work = Work({TEXT: [[1, 2, 3], [4]], IMAGE: [CostedRow(None, 50)]},
                slots={TEXT: [0, 2], IMAGE: [1]})
    assert work.tokens == 3 + 1 + 50
    out = adapter.combine(work, {TEXT: np.array([[1, 0], [0, 1]], np.float32),
                                 IMAGE: np.array([[5, 5]], np.float32)}, 3)
    assert out.tolist() == [[1, 0], [5, 5], [0, 1]]
    alone = np.ones((2, 2), np.float32)
    assert adapter.combine(Work({TEXT: [[1], [2]]}), {TEXT: alone}, 2) is alone


def test_adapters_declare_what_they_can_do() -> None:
    from runtime.adapters.base import Capability as C, Embedding, PairScoring

    can = {kind: ADAPTERS[kind].capabilities for kind in AdapterKind}
    assert can[AdapterKind.TEXT] == {C.EMBED_TEXT, C.PLAIN_TEXT_ROWS, C.TRUNCATE_LEFT}
    assert can[AdapterKind.DUAL_TOWER] == {C.EMBED_TEXT, C.PLAIN_TEXT_ROWS, C.EMBED_IMAGES}
    assert can[AdapterKind.VISION_LANGUAGE] == {C.EMBED_TEXT, C.EMBED_IMAGES}  # templated text
    assert can[AdapterKind.CROSS_ENCODER] == {C.SCORE_PAIRS, C.CLASSIFY}
    assert can[AdapterKind.YES_NO_RERANKER] == {C.SCORE_PAIRS}
    assert can[AdapterKind.SPARSE] == {C.SPARSE, C.PLAIN_TEXT_ROWS, C.TRUNCATE_LEFT}  # no dense
    assert can[AdapterKind.MULTI_HEAD] == {C.EMBED_TEXT, C.SPARSE, C.MULTI_VECTOR,
                                           C.PLAIN_TEXT_ROWS, C.TRUNCATE_LEFT}
    assert can[AdapterKind.LATE_INTERACTION] == {C.MULTI_VECTOR, C.PLAIN_TEXT_ROWS,
                                                 C.TRUNCATE_LEFT}
    for kind, adapter in ADAPTERS.items():  # the protocol a class implements says the same
        # SPLADE and ColBERT embed, only sparse / only multi-vector
        embeds = bool({C.EMBED_TEXT, C.SPARSE, C.MULTI_VECTOR} & can[kind])
        assert issubclass(adapter, Embedding) == embeds, kind
        assert issubclass(adapter, PairScoring) == (C.SCORE_PAIRS in can[kind]), kind
