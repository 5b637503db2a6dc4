"""The README's commands, as a new user copies them: one way to run Python, and curl bodies
sent as JSON (anything else is 415: server/guards.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ACTIVATE = "activate it\nfirst, in each new shell, with `. .venv/bin/activate`"


def commands(text: str) -> list[str]:
    """Each command of the text's shell blocks and inline code spans, continuations joined."""
    blocks = re.findall(r"```(?:shell|sh|bash)\n(.*?)```", text, re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return lines + re.findall(r"`([^`\n]+)`", text)


def test_one_python_convention_stated_once() -> None:
    assert README.count(ACTIVATE) == 1
    runs = [c for c in commands(README) if re.search(r"\bpython3?\b.* -m ", c)]
    assert len(runs) > 20
    # Only SGLang's own command (the one this replaces) is spelled with python3.
    odd = [c for c in runs if not re.match(r"^(\w+=\S+ )*python -m ", c.strip())
           and "sglang.launch_server" not in c]
    assert odd == []


def test_every_curl_with_a_body_sends_json() -> None:
    texts = [README] + [p.read_text() for p in sorted((ROOT / "docker").glob("*.yaml"))]
    curls = [c for t in texts for c in re.sub(r"\\\n#?", " ", t).splitlines()
             if "curl " in c and " -d " in c]
    assert len(curls) >= 4
    assert [c for c in curls if "-H 'Content-Type: application/json'" not in c] == []
