"""Writes server/sglang_flags.json: every flag of SGLang's launch_server, read from its source.

    python -m bench.sglang_flags /path/to/unpacked/sglang [server/sglang_flags.json]

(`pip download --no-deps sglang==0.5.23` and unzip it gives the source.) SGLang derives most
of its flags from annotated fields (srt/arg_groups/fields/*.py: `name: A[type, "help" |
Arg(...)]`, turned into add_argument calls by srt/arg_groups/arg_utils.py
add_cli_args_from_dataclass) and registers the rest by hand in srt/server_args.py
ServerArgs.add_cli_args. Importing SGLang needs its whole GPU stack, so both are read with
`ast` and the rules of add_cli_args_from_dataclass are re-applied here: a bool field is a
switch, a list field takes nargs "+", a Literal gives choices, BooleanOptionalAction adds
the `--no-` spelling. The output is committed; run this again for a new SGLang release.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

SWITCH_ACTIONS = {"store_true", "store_false", "DeprecatedStoreTrueAction",
                  "BooleanOptionalAction"}


def _name(node: ast.AST) -> str:
    """`x`, `a.b.x` -> the last name; anything else -> ''."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _literal(node: ast.AST | None, constants: dict[str, Any]) -> Any:
    if node is None:
        return None
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None  # computed (e.g. a list plus a constant): not recorded


def _constants(path: Path) -> dict[str, Any]:
    """Module-level NAME = <literal> assignments (srt/arg_groups/choices.py)."""
    out: dict[str, Any] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            value = _literal(node.value, out)
            if isinstance(node.targets[0], ast.Name) and value is not None:
                out[node.targets[0].id] = value
    return out


def _unwrap(node: ast.AST) -> ast.AST:
    """Optional[X], Union[X, None] and X | None -> X."""
    if isinstance(node, ast.Subscript) and _name(node.value) in ("Optional", "Union"):
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        rest = [p for p in parts if not (isinstance(p, ast.Constant) and p.value is None)]
        return _unwrap(rest[0]) if len(rest) == 1 else node
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        if isinstance(node.right, ast.Constant) and node.right.value is None:
            return _unwrap(node.left)
    return node


def _flag(names: list[str], dest: str, nargs: Any, choices: Any, switch: bool,
          negatable: bool = False) -> dict[str, Any]:
    if negatable:
        names = names + ["--no-" + n[2:] for n in names]
    return {"names": names, "dest": dest, "takes_value": not switch,
            "nargs": None if switch else nargs,
            "choices": list(choices) if isinstance(choices, (list, tuple, set)) else None}


def _field_flag(field: ast.AnnAssign, constants: dict[str, Any]) -> dict[str, Any] | None:
    """add_cli_args_from_dataclass's rules for one `name: A[type, meta]` field."""
    ann = field.annotation
    if not (isinstance(ann, ast.Subscript) and _name(ann.value) == "A"
            and isinstance(ann.slice, ast.Tuple) and isinstance(field.target, ast.Name)):
        return None
    meta: dict[str, ast.AST] = {}
    for part in ann.slice.elts[1:]:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            break
        if isinstance(part, ast.Call) and _name(part.func) == "Arg":
            meta = {k.arg: k.value for k in part.keywords if k.arg}
            break
    else:
        return None  # no Arg and no help string: not a CLI flag
    if _literal(meta.get("no_cli"), constants):
        return None
    dest = field.target.id
    names = [_literal(meta.get("cli_name"), constants) or "--" + dest.replace("_", "-")]
    names += _literal(meta.get("aliases"), constants) or []
    choices = _literal(meta.get("choices"), constants)
    nargs = _literal(meta.get("nargs"), constants)
    if "action" in meta:
        action = _name(meta["action"])
        extra = meta.get("action_kwargs")
        if isinstance(extra, ast.Dict):  # {"type": str, "nargs": "*"}: read key by key
            given = {_literal(k, {}): v for k, v in zip(extra.keys, extra.values) if k}
            nargs = _literal(given.get("nargs"), constants) or nargs
        return _flag(names, dest, nargs, choices, action in SWITCH_ACTIONS,
                     negatable=action == "BooleanOptionalAction")
    kind = _unwrap(ann.slice.elts[0])
    head = _name(kind.value) if isinstance(kind, ast.Subscript) else _name(kind)
    if head == "Literal" and isinstance(kind, ast.Subscript):
        return _flag(names, dest, nargs, choices or _literal(kind.slice, constants), False)
    if head in ("List", "list") and "type_parser" not in meta:
        return _flag(names, dest, nargs or "+", choices, False)
    return _flag(names, dest, nargs, choices, head == "bool")


def _manual_flags(server_args: Path, constants: dict[str, Any]) -> list[dict[str, Any]]:
    """The add_argument calls in ServerArgs.add_cli_args (dynamic choices, deprecations)."""
    out = []
    for node in ast.walk(ast.parse(server_args.read_text())):
        if not (isinstance(node, ast.Call) and _name(node.func) == "add_argument"):
            continue
        names = [str(a.value) for a in node.args if isinstance(a, ast.Constant)]
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        action = _name(kw["action"]) if "action" in kw else ""
        if "nargs" in kw:  # DeprecatedStoreConstAction takes a value with nargs=None
            switch = _literal(kw["nargs"], constants) == 0
        else:
            switch = action in SWITCH_ACTIONS or action == "DeprecatedStoreConstAction"
        dest = _literal(kw.get("dest"), constants) or names[0].lstrip("-").replace("-", "_")
        out.append(_flag(names, dest, _literal(kw.get("nargs"), constants),
                         _literal(kw.get("choices"), constants), switch))
    return out


def sglang_flags(root: Path) -> list[dict[str, Any]]:
    srt = root / "srt"
    constants = _constants(srt / "arg_groups" / "choices.py")
    flags = []
    for path in sorted((srt / "arg_groups" / "fields").glob("*.py")):
        for cls in ast.parse(path.read_text()).body:
            if isinstance(cls, ast.ClassDef):
                flags += [f for f in (_field_flag(n, constants) for n in cls.body
                                      if isinstance(n, ast.AnnAssign)) if f]
    flags += _manual_flags(srt / "server_args.py", constants)
    return sorted(flags, key=lambda f: f["names"][0])


def main(argv: list[str]) -> None:
    root = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else Path("server/sglang_flags.json")
    version = next((line.split("=")[-1].strip().strip("\"'")
                    for line in (root / "_version.py").read_text().splitlines()
                    if line.startswith("__version__ = ")), "unknown")
    data = {"sglang": version, "generated_by": "python -m bench.sglang_flags",
            "flags": sglang_flags(root)}
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{out}: {len(data['flags'])} flags of SGLang {version}")


if __name__ == "__main__":
    main(sys.argv[1:])
