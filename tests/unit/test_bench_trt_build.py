"""BENCHMARKS.md's TensorRT build section: replaced by bench.trt_build, kept by `make bench`."""

from __future__ import annotations

from bench.trt_build import END, START, carry, with_section

SECTION = f"{START}\n## builds\n| a | 1 s |\n{END}"


def test_section_is_added_then_replaced_in_place() -> None:
    once = with_section("# Benchmarks\n\n## Results\nrows\n", SECTION)
    assert once == f"# Benchmarks\n\n## Results\nrows\n\n{SECTION}\n"
    newer = SECTION.replace("1 s", "2 s")
    assert with_section(once, newer) == f"# Benchmarks\n\n## Results\nrows\n\n{newer}\n"


def test_make_bench_rewrite_keeps_the_section() -> None:
    old = with_section("# Benchmarks\nold rows\n", SECTION)
    assert carry(old, "# Benchmarks\nnew rows\n") == f"# Benchmarks\nnew rows\n\n{SECTION}\n"
    assert carry("# Benchmarks\nold rows\n", "# Benchmarks\nnew\n") == "# Benchmarks\nnew\n"
