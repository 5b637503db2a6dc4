"""Match a checkpoint to its family. A new family is one file and one line in FAMILIES."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from models import bert, bge_m3, clip, colbert, cross_encoder, gme, qwen3_reranker, splade
from models import e5_mistral, gte_qwen2, qwen3  # decoder embedding families
from models.checkpoint import CheckpointInfo, read_checkpoint
from models.family import Family
from models.spec import ModelSpec, UnsupportedModelError

FAMILIES: tuple[Family, ...] = (
    splade.FAMILY,  # before bert: both take BertForMaskedLM (SPLADE's with SpladePooling)
    bge_m3.FAMILY,  # before bert: both take XLMRobertaModel (bge-m3's with its head files)
    colbert.FAMILY,  # before bert: BERT-like bodies with PyLate's Dense and query/document keys
    bert.FAMILY,
    clip.FAMILY,
    gme.FAMILY,
    qwen3_reranker.FAMILY,  # before qwen3: both are Qwen3ForCausalLM
    qwen3.FAMILY,
    gte_qwen2.FAMILY,
    e5_mistral.FAMILY,
    cross_encoder.FAMILY,
)


def supported_families() -> str:
    return "; ".join(f"{f.name}: {f.description} ({', '.join(f.architectures)})" for f in FAMILIES)


def family_for(info: CheckpointInfo) -> Family:
    for family in FAMILIES:
        if family.matches(info):
            return family
    raise UnsupportedModelError(
        f"{info.path}: architecture {info.architecture!r} is not supported. "
        f"Supported families: {supported_families()}"
    )


def family_by_name(name: str) -> Family:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise UnsupportedModelError(f"unknown family {name!r}; supported: {supported_families()}")


def resolve(path: str | Path) -> tuple[Family, ModelSpec]:
    """The checkpoint's family and spec; the spec names the family's runtime adapter."""
    info = read_checkpoint(path)
    family = family_for(info)
    spec = family.make_spec(info)
    # config.json's Matryoshka keys, read as SGLang reads them (configs/model_config.py:
    # is_matryoshka = matryoshka_dimensions or is_matryoshka), on top of the family's own.
    sizes = tuple(int(d) for d in info.config.get("matryoshka_dimensions") or ())
    matryoshka = spec.matryoshka or bool(sizes) or bool(info.config.get("is_matryoshka"))
    return family, dataclasses.replace(spec, adapter=family.adapter, matryoshka=matryoshka,
                                       matryoshka_dimensions=sizes)
