"""The bulk command's optional dependencies, imported here only (MissingDependencyError
names the pip extra that brings each)."""

from __future__ import annotations

import importlib
from typing import Any

from runtime.errors import MissingDependencyError

EXTRAS = {"pyarrow": "bulk", "tqdm": "bulk", "ray": "ray"}


def require(module: str) -> Any:
    """`module` imported (e.g. "pyarrow.parquet"), or the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS[module.split(".")[0]]
        raise MissingDependencyError(
            f"the bulk command needs {module.split('.')[0]}: pip install -e '.[{extra}]'"
        ) from exc
