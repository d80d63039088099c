"""PABEE's patience exits against a one-sample-at-a-time reference; the equal-FLOPs comparison by hand."""
import numpy as np
import pytest

from paddle_dynafast.analysis import criteria


def _pabee_one_by_one(layer_probs, patience):
    """PABEE, section 3.1, as written: a counter of unchanged predictions, one sample at a time."""
    exits = []
    for sample in layer_probs:
        layers = len(sample)
        count, exit_layer = 0, layers
        for i in range(1, layers):
            count = count + 1 if sample[i].argmax() == sample[i - 1].argmax() else 0
            if count >= patience and i < layers - 1:
                exit_layer = i + 1
                break
        exits.append(exit_layer)
    return np.array(exits)


def test_patience_equals_the_reference_loop():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((300, 6, 3)) + np.array([1.5, 0, 0]) * rng.random((300, 1, 1))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for patience in (1, 2, 3, 4, 5, 9):
        p, exit_layer = criteria.simulate_patience(probs, patience)
        np.testing.assert_array_equal(exit_layer, _pabee_one_by_one(probs, patience), err_msg=str(patience))
        np.testing.assert_array_equal(p, probs[np.arange(300), exit_layer - 1])
    # by hand: predictions 0 0 1 1 1 2: patience 1 leaves at layer 2, patience 2 at layer 5, patience 3 never
    hand = np.eye(3)[[0, 0, 1, 1, 1, 2]][None].astype("float32")
    assert [int(criteria.simulate_patience(hand, t)[1][0]) for t in (1, 2, 3)] == [2, 5, 6]
    # more patience never exits earlier
    layers = [criteria.simulate_patience(probs, t)[1] for t in (1, 2, 3, 4)]
    assert all((a <= b).all() for a, b in zip(layers, layers[1:]))
    with pytest.raises(ValueError, match="patience 0 is not a whole number >= 1"):
        criteria.simulate_patience(probs, 0)


def test_interpolation_and_equal_flops_comparison_by_hand():
    base = [(1.0, 0.90), (3.0, 0.88), (5.0, 0.80), (5.0, 0.82)]  # two points at 5x are averaged: 0.81
    assert criteria.interpolate(base, 2.0) == pytest.approx(0.89)
    assert criteria.interpolate(base, 4.0) == pytest.approx((0.88 + 0.81) / 2)
    assert criteria.interpolate(base, 6.0) is None and criteria.interpolate([], 1.0) is None
    other = [(2.0, 0.87), (4.0, 0.86), (9.0, 0.5)]  # base is 0.02 ahead at 2x, 0.015 behind at 4x, 9x outside
    c = criteria.compare_at_equal_flops(base, other)
    assert c["compared"] == 2 and c["base_better_or_equal"] == 1
    assert c["mean_gap_points"] == pytest.approx(100 * (0.02 - 0.015) / 2)
    assert np.isnan(criteria.compare_at_equal_flops(base, [(9.0, 0.5)])["mean_gap_points"])


def test_match_is_the_cheapest_point_not_cheaper_than_asked():
    speedups = [1.0, 2.5, 2.0, 4.0]
    assert criteria.matched_at_flops(speedups, 2.2) == 1
    assert criteria.matched_at_flops(speedups, 2.0) == 2
    assert criteria.matched_at_flops(speedups, 4.5) is None
