"""models/ is pure data and functions: no torch, transformers or builder anywhere in it
(not even inside functions), and every family's torch side is found through its Family."""

from __future__ import annotations

import ast
import importlib

from models.registry import FAMILIES
from tests.helpers import ROOT

HEAVY = ("torch", "transformers", "sentence_transformers", "builder", "onnx", "onnxruntime")


def imported(path: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_models_import_nothing_heavy() -> None:
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "models").glob("*.py"))
    assert "models/registry.py" in files
    for path in files:
        heavy = {n for n in imported(path) if n.split(".")[0] in HEAVY}
        assert not heavy, f"{path} imports {sorted(heavy)}"


def test_every_family_names_an_exporter_with_graphs_and_reference() -> None:
    for family in FAMILIES:
        module = importlib.import_module(family.exporter)
        assert family.exporter.startswith("builder.families.")
        assert callable(module.graphs) and callable(module.reference), family.name
