"""BENCHMARKS.md sections: each benchmark rewrites its own and keeps the others."""

from __future__ import annotations

from pathlib import Path

from bench.document import replace_section


def test_sections_are_replaced_in_place_and_others_kept(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    replace_section(doc, "cpu", "## CPU\nold numbers")
    replace_section(doc, "trt", "## TensorRT\nbuild times")
    text = replace_section(doc, "cpu", "## CPU\nnew numbers")
    assert text.startswith("# Benchmarks\n")
    assert "new numbers" in text and "old numbers" not in text
    assert text.index("## CPU") < text.index("## TensorRT")  # the order is kept
    assert text.count("<!-- section:cpu -->") == 1 and "build times" in text
    assert doc.read_text() == text
