"""benchmarks/promise_rules.py: fixed-sequence testing per width, against the per-point and simultaneous rules."""
import importlib.util
import sys
from pathlib import Path

import numpy as np

from paddle_dynafast.analysis.calibrate import promised_drops
from paddle_dynafast.analysis.results import GridPoint
from paddle_dynafast.config import BootstrapConfig

spec = importlib.util.spec_from_file_location(
    "promise_rules", Path(__file__).resolve().parents[1] / "benchmarks" / "promise_rules.py")
rules = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = rules
spec.loader.exec_module(rules)

POINTS = [GridPoint(w, s, 0.9, 1.0, 1.0, 1.0) for w in (1.0, 0.5) for s in (0.2, 0.0, 0.1)]  # speeds unordered


def test_fixed_sequence_certifies_each_width_up_to_its_first_failure_in_ascending_speed():
    # width 1: speed 0 within, 0.1 not, 0.2 within but after a failure; width 0.5: every speed within
    bound = np.array([0.001, 0.001, 0.01, 0.003, 0.001, 0.002])
    assert rules.fixed_sequence(POINTS, bound, 0.005).tolist() == [False, True, False, True, True, True]
    assert not rules.fixed_sequence(POINTS, np.full(6, 0.006), 0.005).any()


def test_every_rule_against_the_bounds_it_is_built_from():
    rng = np.random.default_rng(0)
    reference = rng.random(400) < 0.9
    flips = [0, 0, 12, 3, 0, 2]  # texts the reference gets right that each point gets wrong
    correct = np.stack([reference.copy() for _ in POINTS], axis=1)
    for j, n in enumerate(flips):
        correct[np.flatnonzero(reference)[:n], j] = False
    boot, budget = BootstrapConfig(samples=2000), 0.02
    found = rules.certified(POINTS, correct, reference, budget, 0.9, boot)
    assert list(found) == list(rules.RULES)
    np.testing.assert_array_equal(found["per point"], promised_drops(correct, reference, 0.9, boot) <= budget)
    corrected = promised_drops(correct, reference, 1 - 0.1 / 2, boot)  # two widths
    np.testing.assert_array_equal(found["fixed sequence per width, Bonferroni"],
                                  rules.fixed_sequence(POINTS, corrected, budget))
    assert found["per point"].tolist() == [True, True, False, True, True, True]  # 12 of 400 flipped: 3 points
    # width 1 at speed 0.2 is within on its own, but comes after speed 0.1, which is not
    assert found["fixed sequence per width, uncorrected"].tolist() == [False, True, False, True, True, True]
    assert not (found["fixed sequence per width, Bonferroni"] & ~found["fixed sequence per width, uncorrected"]).any()
    assert not (found["simultaneous"] & ~found["per point"]).any()  # the band is wider than every point's bound
