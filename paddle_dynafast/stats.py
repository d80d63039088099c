"""Paired statistics on per-example correctness: the bootstrap interval of an accuracy difference, and McNemar's test.

Two systems measured on the same examples are compared *paired*: every
bootstrap replicate resamples the examples (with replacement) once and scores
both systems on that one resample, so the noise the two share (which sentences
happen to be in the split) cancels out of their difference. One standard error
of an accuracy near 88 % on 872 examples is about 1.1 points; the
paired interval of a difference between two similar systems is much narrower
than that, since they are right and wrong on mostly the same sentences.

* :func:`bootstrap_differences`: the bootstrap distribution of
  ``accuracy(system) - accuracy(reference)`` for any number of systems at once
  (``[samples, systems]``), every system on the *same* resamples (one seed), so
  that quantiles of different systems can be compared and any pair can be
  differenced;
* :func:`paired_bootstrap`: the observed difference and its percentile interval
  (Efron and Tibshirani 1993, ch. 13; plain percentiles, no bias correction);
* :func:`per_layer_report`: every classifier of an adaptive model (one per
  layer) beside its final one: accuracy, agreement with the final classifier's
  labels, and KL divergence to its probabilities.
* :func:`mcnemar`: McNemar's test (1947) of equal error rates from the
  discordant pairs: the exact two-sided binomial test when there are fewer than
  ``exact_below`` of them, else the chi-square statistic with continuity
  correction ``(|b - c| - 1)^2 / (b + c)`` on one degree of freedom. The result
  names which one was used.

Pure NumPy; :mod:`scipy.stats` is used only for the binomial and chi-square
tails (and as the reference in the tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from .errors import ConfigError

CHUNK = 500
"""Bootstrap replicates drawn at once (a ``[CHUNK, examples]`` index matrix)."""


def _correct(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 or booleans (correct or not per example)")
    return array.astype("float64")


def _check(samples: int, confidence: float) -> None:
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ConfigError(f"bootstrap samples must be a whole number >= 1, got {samples!r}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence} is not in (0, 1)")


def resample_indices(examples: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """The bootstrap resamples, ``[chunk, examples]`` index matrices of at most :data:`CHUNK` rows each.

    A function of ``(examples, samples, seed)`` alone: every caller with the same
    three gets the same resamples, which is what pairs the systems.
    """
    if examples < 1:
        raise ValueError("no examples to resample")
    rng = np.random.default_rng(seed)
    for start in range(0, samples, CHUNK):
        yield rng.integers(0, examples, size=(min(CHUNK, samples - start), examples))


def bootstrap_accuracies(correct, samples: int = 10000, seed: int = 0) -> np.ndarray:
    """The accuracy of every system on each bootstrap resample of the examples.

    ``correct`` is ``[examples]`` or ``[examples, systems]`` (1 where a system is
    right). Returns ``[samples]`` or ``[samples, systems]`` (fractions), every
    system scored on the same resamples, so that the difference of any two
    columns is their paired bootstrap difference.
    """
    correct = _correct(correct, "correct")
    _check(samples, 0.5)
    single = correct.ndim == 1
    c = correct.reshape(len(correct), -1)  # [examples, systems]
    n = len(c)
    out = []
    for idx in resample_indices(n, samples, seed):
        rows = len(idx)
        counts = np.bincount((idx + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n).reshape(rows, n)
        out.append(counts @ c / n)  # [rows, systems]: each system's accuracy on each resample
    accuracies = np.concatenate(out)
    return accuracies[:, 0] if single else accuracies


def bootstrap_differences(correct, reference, samples: int = 10000, seed: int = 0) -> np.ndarray:
    """``accuracy(system) - accuracy(reference)`` on each bootstrap resample of the examples.

    ``correct`` is ``[examples]`` or ``[examples, systems]``, ``reference``
    ``[examples]``. Returns ``[samples]`` or ``[samples, systems]`` (fractions, not
    points), every system scored on the same resamples as the reference.
    """
    correct, reference = _correct(correct, "correct"), _correct(reference, "reference")
    if reference.ndim != 1 or len(reference) != len(correct):
        raise ValueError(f"correct has {len(correct)} examples, reference {reference.shape}: they must match")
    single = correct.ndim == 1
    both = bootstrap_accuracies(np.column_stack([reference, correct.reshape(len(correct), -1)]), samples, seed)
    diffs = both[:, 1:] - both[:, :1]
    return diffs[:, 0] if single else diffs


@dataclass(frozen=True)
class Interval:
    """An accuracy difference (fractions: 0.01 = one point) and its bootstrap interval."""

    difference: float
    """``accuracy(a) - accuracy(b)`` on the examples as measured."""
    low: float
    high: float
    confidence: float
    """Share of the bootstrap distribution between ``low`` and ``high`` (0.95)."""

    def points(self) -> str:
        """``-0.57 [-1.15, +0.00]`` in accuracy points."""
        return f"{100 * self.difference:+.2f} [{100 * self.low:+.2f}, {100 * self.high:+.2f}]"


def percentile_interval(differences: np.ndarray, confidence: float = 0.95):
    """``(low, high)`` percentile bounds of bootstrap ``differences`` (``[samples]`` or ``[samples, systems]``)."""
    _check(1, confidence)
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail], axis=0)
    return low, high


def paired_bootstrap(correct_a, correct_b, samples: int = 10000, seed: int = 0,
                     confidence: float = 0.95) -> Interval:
    """The accuracy difference ``a - b`` of two systems on the same examples, with its paired percentile interval."""
    _check(samples, confidence)
    a, b = _correct(correct_a, "correct_a"), _correct(correct_b, "correct_b")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be vectors over the same examples")
    diffs = bootstrap_differences(a, b, samples, seed)
    low, high = percentile_interval(diffs, confidence)
    return Interval(difference=float(a.mean() - b.mean()), low=float(low), high=float(high), confidence=confidence)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of two systems on the same examples."""

    only_a: int
    """Examples ``a`` gets right and ``b`` wrong."""
    only_b: int
    """Examples ``b`` gets right and ``a`` wrong."""
    statistic: Optional[float]
    """The continuity-corrected chi-square statistic; None for the exact test."""
    p_value: float
    """Two-sided."""
    method: str
    """``"exact"`` (binomial) or ``"chi2"`` (with continuity correction)."""


def mcnemar(correct_a, correct_b, exact_below: int = 25) -> McNemar:
    """McNemar's test on the discordant pairs; exact binomial when there are fewer than ``exact_below`` of them."""
    from scipy import stats  # only when a test is computed

    a, b = _correct(correct_a, "correct_a").astype(bool), _correct(correct_b, "correct_b").astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must cover the same examples")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n < exact_below:
        p = 1.0 if n == 0 else min(1.0, 2 * float(stats.binom.cdf(min(only_a, only_b), n, 0.5)))
        return McNemar(only_a, only_b, None, p, "exact")
    statistic = (abs(only_a - only_b) - 1) ** 2 / n
    return McNemar(only_a, only_b, float(statistic), float(stats.chi2.sf(statistic, 1)), "chi2")


def paired_against(correct, reference, samples: int = 10000, seed: int = 0, confidence: float = 0.95) -> dict:
    """``accuracy(correct) - accuracy(reference)`` on the same examples as a JSON-ready row: the difference, its
    paired-bootstrap interval (``low``, ``high``) and McNemar's p."""
    interval = paired_bootstrap(correct, reference, samples, seed, confidence)
    return {"delta": interval.difference, "low": interval.low, "high": interval.high,
            "mcnemar_p": mcnemar(correct, reference).p_value}


def per_layer_report(layer_probs: np.ndarray, gold=None) -> dict:
    """Every classifier of ``layer_probs`` ``[examples, layers, labels]`` (the last the final classifier):
    ``agreement`` (the share of examples whose label is the final classifier's, the last 1.0), ``kl_to_final``
    (``KL(branch || final)`` averaged over the examples, one per branch) and, when every example of ``gold`` has a
    label (>= 0), ``accuracy``."""
    p = np.clip(np.asarray(layer_probs, dtype="float64"), 1e-30, None)
    final = p[:, -1:, :]
    kl = (p[:, :-1] * (np.log(p[:, :-1]) - np.log(final))).sum(-1).mean(0)  # [layers - 1]
    labels = p.argmax(-1)  # [examples, layers]
    report = {"kl_to_final": kl.round(6).tolist(),
              "agreement": (labels == labels[:, -1:]).mean(0).round(6).tolist()}
    if gold is not None and len(gold) and min(gold) >= 0:
        report["accuracy"] = (labels == np.asarray(gold)[:, None]).mean(0).round(6).tolist()
    return report
