"""The output-forms bench's arithmetic: whole requests only, and ratios taken within a
round (a slow round slows every case in it alike), the median over rounds."""

from __future__ import annotations

from bench.outputs import Load, groups_of, ratios


def test_groups_are_whole_requests() -> None:
    assert groups_of([str(i) for i in range(7)], 3) == [["0", "1", "2"], ["3", "4", "5"]]


def test_ratios_are_within_a_round() -> None:
    def run(seconds: float, cpu: float) -> Load:
        return Load(seconds, 0, 100, cpu)

    runs = {"float": [run(1.0, 2.0), run(4.0, 8.0), run(1.0, 2.0)],
            "int8": [run(0.5, 2.2), run(2.0, 8.8), run(0.5, 2.2)]}
    speed = ratios(runs, "float", lambda r: 1 / r.seconds)
    cpu = ratios(runs, "float", lambda r: r.server_cpu_s)
    assert speed == {"float": 1.0, "int8": 2.0}
    assert cpu["float"] == 1.0 and abs(cpu["int8"] - 1.1) < 1e-12
