"""benchmarks/report.py: the comparisons behind the targets table and the branch ablations, by hand."""
import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("report", Path(__file__).resolve().parents[1] / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def point(width, speed, accuracy, speedup):
    return {"width": width, "speed": speed, "accuracy": accuracy, "flops_speedup": speedup, "mean_exit_layer": 1.0}


BASE = {"points": [point(1.0, 0.0, 0.90, 1.0), point(1.0, 0.5, 0.88, 3.0), point(1.0, 1.0, 0.80, 5.0),
                   point(0.5, 0.0, 0.86, 2.0), point(0.5, 0.5, 0.85, 4.0), point(0.5, 1.0, 0.79, 6.0)]}


def test_most_accurate_with_a_speedup():
    assert report.most_accurate(BASE["points"], 3.0) == point(1.0, 0.5, 0.88, 3.0)
    assert report.most_accurate(BASE["points"], 5.5) == point(0.5, 1.0, 0.79, 6.0)
    assert report.most_accurate(BASE["points"], 7.0) is None


def test_compare_at_same_speed_and_same_speedup():
    # width 1.0 speed 0.5: less accurate than BASE (0.87 < 0.88) but at 2.0x, where BASE's curve is at
    # 0.90 + (0.88 - 0.90) / 2 = 0.89 >= 0.87; width 0.5 speed 0.5: more accurate (0.855 > 0.85) at 5.0x, where
    # BASE is at (0.85 + 0.79) / 2 = 0.82 < 0.855
    other = {"points": [point(1.0, 0.0, 0.90, 1.0), point(1.0, 0.5, 0.87, 2.0), point(1.0, 1.0, 0.80, 5.0),
                        point(0.5, 0.5, 0.855, 5.0)]}
    c = report.compare(BASE, other)
    assert c["same_speed"] == (1, 2)
    assert c["same_speedup"] == (1, 2)
    assert c["mean_gap_points"] == pytest.approx(100 * ((0.89 - 0.87) + (0.82 - 0.855)) / 2)


def test_compare_skips_speedups_outside_the_base_curve():
    other = {"points": [point(1.0, 0.5, 0.70, 9.0)]}
    c = report.compare(BASE, other)
    assert c["same_speed"] == (1, 1) and c["same_speedup"] == (0, 0)
