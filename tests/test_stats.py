"""Paired bootstrap and McNemar's test against hand-computed values and SciPy."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from paddle_dynafast import stats


def _pair(n=400, seed=0, p_a=0.88, p_flip=0.06):
    """Two correlated systems: b is a with a few answers flipped."""
    rng = np.random.default_rng(seed)
    a = rng.random(n) < p_a
    b = np.where(rng.random(n) < p_flip, ~a, a)
    return a, b


def test_bootstrap_differences_are_the_differences_of_the_same_resamples():
    a, b = _pair(n=57)
    c = ~a
    diffs = stats.bootstrap_differences(np.stack([a, c], axis=1), b, samples=1200, seed=3)
    assert diffs.shape == (1200, 2)
    # recompute by hand from the very resamples the function drew
    by_hand = np.concatenate([np.stack([a[idx].mean(1) - b[idx].mean(1), c[idx].mean(1) - b[idx].mean(1)], axis=1)
                              for idx in stats.resample_indices(57, 1200, seed=3)])
    np.testing.assert_allclose(diffs, by_hand, atol=1e-12)
    # one system at a time gives the same replicates: the seed, not the call, pairs them
    np.testing.assert_allclose(stats.bootstrap_differences(a, b, samples=1200, seed=3), diffs[:, 0], atol=1e-12)
    assert not np.allclose(stats.bootstrap_differences(a, b, samples=1200, seed=4), diffs[:, 0])


def test_paired_interval_matches_scipy_percentile_bootstrap():
    a, b = _pair()
    got = stats.paired_bootstrap(a, b, samples=20000, seed=0)
    assert got.difference == pytest.approx(a.mean() - b.mean())
    ref = scipy_stats.bootstrap((a.astype(float), b.astype(float)), lambda x, y, axis: x.mean(axis) - y.mean(axis),
                                paired=True, vectorized=True, n_resamples=20000, method="percentile",
                                confidence_level=0.95, random_state=1).confidence_interval
    # Monte Carlo error of a 2.5 % quantile with 20000 resamples is well under a quarter point here
    assert got.low == pytest.approx(ref.low, abs=0.0025) and got.high == pytest.approx(ref.high, abs=0.0025)
    assert got.low < got.difference < got.high
    # pairing: the interval of the difference is far narrower than the unpaired one (the systems mostly agree)
    unpaired = scipy_stats.bootstrap((a.astype(float), b.astype(float)),
                                     lambda x, y, axis: x.mean(axis) - y.mean(axis), paired=False, vectorized=True,
                                     n_resamples=5000, method="percentile", random_state=1).confidence_interval
    assert got.high - got.low < 0.6 * (unpaired.high - unpaired.low)
    assert stats.Interval(-0.0057, -0.0115, 0.0, 0.95).points() == "-0.57 [-1.15, +0.00]"


def test_identical_systems_have_a_zero_interval_and_bad_inputs_are_named():
    a, _ = _pair(n=50)
    same = stats.paired_bootstrap(a, a, samples=100)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="confidence 1.0 is not in"):
        stats.paired_bootstrap(a, a, confidence=1.0)
    with pytest.raises(ValueError, match="bootstrap samples must be a whole number >= 1, got 0"):
        stats.paired_bootstrap(a, a, samples=0)
    with pytest.raises(ValueError, match="must hold 0/1 or booleans"):
        stats.paired_bootstrap(a * 2.0, a)
    with pytest.raises(ValueError, match="correct has 50 examples, reference"):
        stats.bootstrap_differences(a, a[:10])


def test_mcnemar_exact_by_hand():
    # 10 examples only a gets right, 2 only b: two-sided exact p = 2 * P(X <= 2 | n=12, 1/2) = 2 * 79 / 4096
    a = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 5, dtype=bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 5, dtype=bool)
    result = stats.mcnemar(a, b)
    assert (result.only_a, result.only_b, result.method, result.statistic) == (10, 2, "exact", None)
    assert result.p_value == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert result.p_value == pytest.approx(scipy_stats.binomtest(2, 12, 0.5).pvalue)
    assert stats.mcnemar(a, a).p_value == 1.0  # no discordant pair
    assert stats.mcnemar(b, a).p_value == pytest.approx(result.p_value)  # symmetric


def test_mcnemar_chi_square_with_continuity_correction_by_hand():
    a = np.array([1] * 30 + [0] * 15 + [1] * 100, dtype=bool)
    b = np.array([0] * 30 + [1] * 15 + [1] * 100, dtype=bool)
    result = stats.mcnemar(a, b)
    assert result.method == "chi2" and (result.only_a, result.only_b) == (30, 15)
    assert result.statistic == pytest.approx(14 ** 2 / 45)  # (|30 - 15| - 1)^2 / (30 + 15)
    assert result.p_value == pytest.approx(scipy_stats.chi2.sf(196 / 45, 1))
    assert 0.03 < result.p_value < 0.04
    assert stats.mcnemar(a, b, exact_below=100).method == "exact"


def test_paired_against_is_the_interval_and_mcnemar_as_one_row():
    rng = np.random.default_rng(5)
    a, b = rng.random(300) < 0.8, rng.random(300) < 0.7
    row = stats.paired_against(a, b, samples=500, seed=1)
    interval = stats.paired_bootstrap(a, b, samples=500, seed=1)
    assert row == {"delta": interval.difference, "low": interval.low, "high": interval.high,
                   "mcnemar_p": stats.mcnemar(a, b).p_value}


def test_per_layer_report_by_hand():
    # 3 examples, 3 classifiers (the last the final), 2 labels
    probs = np.array([[[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]],
                      [[0.3, 0.7], [0.2, 0.8], [0.1, 0.9]],
                      [[0.6, 0.4], [0.7, 0.3], [0.8, 0.2]]])
    report = stats.per_layer_report(probs, [1, 1, 1])
    assert report["agreement"] == pytest.approx([2 / 3, 1, 1])  # the first branch says 0 on the first text
    assert report["accuracy"] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    kl = (probs[:, 0] * np.log(probs[:, 0] / probs[:, 2])).sum(-1).mean()
    assert report["kl_to_final"][0] == pytest.approx(kl, abs=1e-6) and len(report["kl_to_final"]) == 2
    assert "accuracy" not in stats.per_layer_report(probs, [1, -1, 0])  # an unlabelled example: no accuracy
    assert "accuracy" not in stats.per_layer_report(probs, None)
