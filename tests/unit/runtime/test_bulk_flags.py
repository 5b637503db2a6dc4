"""The bulk command's flags as `--help` shows them: each one says what it does."""

from __future__ import annotations

import argparse

from runtime.bulk.__main__ import parser
from tests.helpers import ROOT


def actions() -> list[argparse.Action]:
    return [a for a in parser()._actions if not isinstance(a, argparse._HelpAction)]


def test_every_flag_has_help_text() -> None:
    silent = [a.option_strings[0] for a in actions() if a.option_strings and not a.help]
    assert silent == []


def test_text_column_says_its_default_in_help_and_readme() -> None:
    text = next(a for a in actions() if a.dest == "text_column")
    assert text.default == "text"
    assert text.help == "the column (JSON key, CSV header) holding the texts (default: text)"
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert ("the texts are in the column (JSON key, CSV header) `--text-column` names, `text` "
            "by default") in readme
