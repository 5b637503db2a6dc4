"""Read a checkpoint's own description of itself: config.json and sentence-transformers files.

Pure file reading (json only), shared by every family: what pooling the model was trained
with, its max length, and its prompts come from these files, never from guesses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ST_POOLING_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_lasttoken": "last",
}


def _read_json(path: Path) -> dict[str, Any] | list[Any] | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    config: dict[str, Any]
    modules: list[dict[str, Any]]  # sentence-transformers modules.json, [] if absent
    pooling_config: dict[str, Any]  # 1_Pooling/config.json (or wherever modules.json says)
    st_config: dict[str, Any]  # config_sentence_transformers.json
    bert_config: dict[str, Any]  # sentence_bert_config.json
    tokenizer_config: dict[str, Any]
    preprocessor_config: dict[str, Any] = field(default_factory=dict)  # image models

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or [self.config.get("model_type", "?")]
        return str(archs[0])

    @property
    def module_types(self) -> list[str]:
        return [str(m.get("type", "")).rsplit(".", 1)[-1] for m in self.modules]

    def st_pooling(self) -> str | None:
        """The pooling sentence-transformers applies, or None without ST files."""
        for key, mode in ST_POOLING_MODES.items():
            if self.pooling_config.get(key):
                return mode
        return None

    def st_normalize(self) -> bool | None:
        """Whether sentence-transformers L2-normalises (a Normalize module in modules.json),
        or None without ST files."""
        return ("Normalize" in self.module_types) if self.modules else None

    def max_len(self, fallback: int = 512) -> int:
        """sentence_bert_config.json, else tokenizer model_max_length, else config positions."""
        for value in (
            self.bert_config.get("max_seq_length"),
            self.tokenizer_config.get("model_max_length"),
            self.config.get("max_position_embeddings"),
        ):
            if isinstance(value, int) and 0 < value < 10**7:
                return value
        return fallback

    def prompts(self) -> tuple[tuple[str, str], ...]:
        prompts = self.st_config.get("prompts") or {}
        return tuple(sorted((str(k), str(v)) for k, v in prompts.items()))

    def default_prompt_name(self) -> str | None:
        name = self.st_config.get("default_prompt_name")
        return str(name) if name else None


def read_checkpoint(path: str | Path) -> CheckpointInfo:
    root = Path(path)
    config = _read_json(root / "config.json")
    if not isinstance(config, dict):
        raise FileNotFoundError(f"{root} has no config.json: not a Hugging Face checkpoint")
    found = _read_json(root / "modules.json")
    modules = [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []
    pooling_dir = next(
        (m.get("path", "") for m in modules if str(m.get("type", "")).endswith("Pooling")),
        "1_Pooling",
    )
    return CheckpointInfo(
        path=root,
        config=config,
        modules=list(modules),
        pooling_config=dict(_read_json(root / pooling_dir / "config.json") or {}),
        st_config=dict(_read_json(root / "config_sentence_transformers.json") or {}),
        bert_config=dict(_read_json(root / "sentence_bert_config.json") or {}),
        tokenizer_config=dict(_read_json(root / "tokenizer_config.json") or {}),
        preprocessor_config=dict(_read_json(root / "preprocessor_config.json") or {}),
    )
