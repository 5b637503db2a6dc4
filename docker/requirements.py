"""Print the project's requirements from pyproject.toml, one per line, for `pip install -r`.

    python requirements.py pyproject.toml            # [project] dependencies
    python requirements.py pyproject.toml build      # the `build` extra

The image installs dependencies from pyproject.toml alone, in layers that a source change
does not invalidate, and the project itself afterwards with --no-deps. Standard library only:
it runs on the base image's bare python.
"""

from __future__ import annotations

import sys
import tomllib


def requirements(pyproject: str, extra: str | None = None) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    if extra is None:
        return list(project["dependencies"])
    return list(project["optional-dependencies"][extra])


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], *sys.argv[2:3])))
