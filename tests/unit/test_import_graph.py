"""Import directions (issue 17): server -> runtime -> models; builder -> models and runtime.

Every module of the project's packages is parsed (not imported), and every import counts,
at module level or inside a function: an import hidden in a function still runs and still
ties the modules together. Also: only the adapter registry picks code by a family name.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("builder", "runtime", "server", "models", "bench", "devtools")
PRODUCT = ("builder", "runtime", "server", "models")
ADAPTER_REGISTRY = "runtime.adapters.registry"
Graph = dict[str, set[str]]  # module -> every module it imports (project or not)


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
              known: set[str]) -> set[str]:
    """The modules one import statement loads (`from a import b`: a.b when it is a module)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:  # relative: from the module's package, up level - 1 packages
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[:len(package) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    found = {f"{base}.{alias.name}" for alias in node.names} & known
    return found or {base}


def import_graph(root: Path = ROOT) -> Graph:
    files = module_files(root)
    known = set(files)
    graph: Graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = set()
        for node in ast.walk(tree):  # walk: imports inside functions count too
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[module] |= _imported(node, module, path.name == "__init__.py", known)
    return graph


@cache
def project_graph() -> Graph:
    return import_graph(ROOT)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(graph: Graph, source: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} imports {dep}" for m, deps in graph.items() if _within(m, (source,))
                  for dep in deps if _within(dep, forbidden))


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one project module (Tarjan)."""
    nodes = set(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in sorted(graph[node] & nodes):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def family_string_checks(root: Path = ROOT) -> list[str]:
    """`<x>.family` or `<x>.adapter` compared (==, !=, in, ...) with a string literal, outside
    the registry: dispatch goes by AdapterKind and the adapters' capabilities."""
    found = []
    for module, path in module_files(root).items():
        if module == ADAPTER_REGISTRY:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if (any(isinstance(o, ast.Attribute) and o.attr in ("family", "adapter")
                        for o in operands)
                        and any(_is_str(o) for o in operands)):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def _is_str(node: ast.expr) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_str(e) for e in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_models_imports_nothing_of_the_layers_above() -> None:
    assert violations(project_graph(), "models", ("runtime", "server", "builder", "bench")) == []


def test_runtime_imports_neither_builder_server_bench_nor_torch() -> None:
    graph = project_graph()
    assert violations(graph, "runtime", ("builder", "server", "bench")) == []
    assert violations(graph, "runtime", ("torch", "transformers", "sentence_transformers")) == []


def test_runtime_has_visible_layers() -> None:
    """backends/ a leaf; artifact/ (the format) above it; adapters/ (each family kind's
    preprocessing) above that; pipeline/ joins them; bulk/ uses the pipeline."""
    graph = project_graph()
    below_backends = ("runtime.artifact", "runtime.adapters", "runtime.pipeline", "runtime.bulk",
                      "runtime.config", "runtime.tokenizer", "runtime.served_model")
    assert violations(graph, "runtime.backends", below_backends) == []
    assert violations(graph, "runtime.artifact",
                      ("runtime.adapters", "runtime.pipeline", "runtime.bulk")) == []
    assert violations(graph, "runtime.adapters", ("runtime.pipeline", "runtime.bulk")) == []
    assert violations(graph, "runtime.pipeline", ("runtime.bulk",)) == []


def test_server_imports_neither_builder_bench_nor_the_model_registry() -> None:
    assert violations(project_graph(), "server", ("builder", "bench", "models.registry")) == []


def test_builder_imports_neither_server_nor_bench() -> None:
    assert violations(project_graph(), "builder", ("server", "bench")) == []


def test_no_product_code_imports_test_tools() -> None:
    """unittest.mock and pytest are test machinery: product code that needs one of their
    tricks (patching the environment, say) says what it does in its own few lines."""
    graph = project_graph()
    assert [v for package in PACKAGES
            for v in violations(graph, package, ("unittest", "pytest"))] == []
    # bench and tests share devtools/ and import nothing of each other's; the product
    # imports neither bench nor devtools
    assert [v for package in PACKAGES for v in violations(graph, package, ("tests",))] == []
    assert [v for package in PRODUCT
            for v in violations(graph, package, ("bench", "devtools"))] == []


def test_no_import_cycle_outside_models() -> None:
    assert [c for c in cycles(project_graph()) if not all(_within(m, ("models",)) for m in c)] \
        == []


def test_no_import_cycle_in_models() -> None:
    assert [c for c in cycles(project_graph()) if all(_within(m, ("models",)) for m in c)] == []


def test_only_the_adapter_registry_checks_a_family_by_string() -> None:
    assert family_string_checks() == []


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The same functions on a made-up tree: a function-level cycle, a relative import, a
    forbidden direction and a family check are all found."""
    files = {
        "runtime/__init__.py": "",
        "runtime/a.py": "def f():\n    from runtime import b\n",
        "runtime/b.py": "from . import a\nimport torch\nfrom server.app import x\n",
        "server/__init__.py": "",
        "server/app.py": "if spec.family in ('clip', 'gme'):\n    pass\n",
        "server/routes.py": "x = 1\nif emb.spec.adapter != 'text':\n    pass\n",
        "models/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for package in ("builder", "bench"):
        (tmp_path / package).mkdir()
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["runtime.a", "runtime.b"]]
    assert violations(graph, "runtime", ("server", "torch")) == [
        "runtime.b imports server.app", "runtime.b imports torch"]
    assert family_string_checks(tmp_path) == ["server/app.py:1", "server/routes.py:2"]
