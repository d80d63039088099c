"""benchmarks/promise_rules.py: the per-point, fixed-sequence and simultaneous rules side by side."""
import importlib.util
import sys
from pathlib import Path

import numpy as np

from paddle_dynafast.analysis.calibrate import promised_drops, sequence_drops
from paddle_dynafast.analysis.results import GridPoint
from paddle_dynafast.config import BootstrapConfig, Budget

spec = importlib.util.spec_from_file_location(
    "promise_rules", Path(__file__).resolve().parents[1] / "benchmarks" / "promise_rules.py")
rules = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = rules
spec.loader.exec_module(rules)


def test_every_rule_against_the_bounds_it_is_built_from():
    points = [GridPoint(w, s, 0.9, 1.0, 1.0, 1.0) for w in (1.0, 0.5) for s in (0.2, 0.0, 0.1)]  # speeds unordered
    rng = np.random.default_rng(0)
    reference = rng.random(400) < 0.9
    flips = [0, 0, 12, 3, 0, 2]  # texts the reference gets right that each point gets wrong
    correct = np.stack([reference.copy() for _ in points], axis=1)
    for j, n in enumerate(flips):
        correct[np.flatnonzero(reference)[:n], j] = False
    boot, budget = BootstrapConfig(samples=2000), 0.02
    found = rules.certified(points, correct, reference, Budget(max_accuracy_drop=100 * budget, confidence=0.9), boot)
    assert list(found) == list(rules.PROMISE_RULES)
    per_point = promised_drops(correct, reference, 0.9, boot)
    np.testing.assert_array_equal(found["per point"], per_point <= budget)
    np.testing.assert_array_equal(found["fixed sequence"], sequence_drops(points, correct, reference, 0.9, boot) <= budget)
    assert found["per point"].tolist() == [True, True, False, True, True, True]  # 12 of 400 flipped: not within
    # width 1 at speed 0.2 is within on its own, but comes after speed 0.1, which is not
    assert found["fixed sequence"].tolist() == [False, True, False, True, True, True]
    assert not (found["simultaneous"] & ~found["per point"]).any()  # the band is wider than every point's bound
