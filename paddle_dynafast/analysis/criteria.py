"""A second exit criterion, PABEE's patience, in NumPy; and comparing two criteria at equal FLOPs.

FastBERT (arXiv 2004.02178) exits at the first layer whose normalised entropy
is below ``speed`` (:func:`paddle_dynafast.model.exit.simulate_exits`). PABEE
(Zhou et al., "BERT Loses Patience", arXiv 2006.04152, section 3.1) exits when
the internal classifiers' predictions stop changing: a counter ``cnt`` starts at
0 after the first layer, ``cnt_i = cnt_{i-1} + 1`` when layer ``i``'s arg-max
equals layer ``i-1``'s and 0 otherwise, and a sample leaves at the first layer
where ``cnt_i`` reaches the patience ``t``: the first layer whose prediction is
the same as the ``t`` layers' before it (``t + 1`` classifiers in a row agree).
A sample that never gets there runs every layer and takes the final classifier.

Here patience is an analysis criterion only, simulated from every layer's
probabilities as :func:`simulate_exits` does for the entropy; the exported
program keeps the entropy loop. Unlike PABEE we reuse the FastBERT branches
(distilled from the final classifier) instead of training PABEE's plain
linear internal classifiers on the labels.

Two criteria (or two trainings) exit at different layers for the same knob
value, so they are compared at equal FLOPs: :func:`compare_at_equal_flops`
interpolates one's accuracy along its FLOPs speed-up curve at each of the
other's points, and :func:`matched_at_flops` pairs each point with the
other criterion's point at the same width that is at least as cheap, for a
paired test on the same examples.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError


def patience_exit_index(layer_probs: np.ndarray, patience: int) -> np.ndarray:
    """The 0-based layer each sample leaves at under PABEE's ``patience``, from ``[samples, layers, labels]``."""
    if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
        raise ConfigError(f"patience {patience!r} is not a whole number >= 1")
    predictions = np.asarray(layer_probs).argmax(-1)  # [samples, layers]
    samples, layers = predictions.shape
    count = np.zeros(samples, dtype="int64")
    exit_index = np.full(samples, layers - 1, dtype="int64")
    done = np.zeros(samples, dtype=bool)
    for i in range(1, layers - 1):  # the last layer is everyone's exit anyway
        count = np.where(predictions[:, i] == predictions[:, i - 1], count + 1, 0)
        leaving = ~done & (count >= patience)
        exit_index[leaving] = i
        done |= leaving
    return exit_index


def simulate_patience(layer_probs: np.ndarray, patience: int) -> Tuple[np.ndarray, np.ndarray]:
    """PABEE's exits from every layer's probabilities ``[samples, layers, labels]``.

    Returns ``(probs [samples, labels], exit_layer [samples])``, ``exit_layer``
    1-based like :func:`paddle_dynafast.model.exit.simulate_exits`.
    """
    p = np.asarray(layer_probs)
    exit_index = patience_exit_index(p, patience)
    return p[np.arange(len(p)), exit_index], exit_index + 1


# ----------------------------------------------------------------------------- equal FLOPs


def interpolate(curve: Sequence[Tuple[float, float]], speedup: float) -> Optional[float]:
    """Accuracy of a ``(speedup, accuracy)`` curve at ``speedup``, linear between its points; None outside its range.

    Points with the same speed-up (speeds at which nobody's exit moves) are averaged.
    """
    if not curve:
        return None
    by_x: Dict[float, List[float]] = {}
    for x, y in curve:
        by_x.setdefault(float(x), []).append(float(y))
    xs = np.array(sorted(by_x))
    ys = np.array([np.mean(by_x[x]) for x in xs])
    if not xs[0] - 1e-12 <= speedup <= xs[-1] + 1e-12:
        return None
    return float(np.interp(speedup, xs, ys))


def compare_at_equal_flops(base: Sequence[Tuple[float, float]], other: Sequence[Tuple[float, float]]) -> Dict:
    """``base`` against ``other`` (``(speedup, accuracy)`` curves of one width) at ``other``'s FLOPs speed-ups.

    Returns the number of ``other``'s points inside ``base``'s range (``compared``),
    how many of them ``base`` is at least as accurate at (``base_better_or_equal``),
    and the mean of ``base``'s interpolated accuracy minus ``other``'s there
    (``mean_gap_points``, in points; NaN when nothing is compared).
    """
    gaps = []
    for x, y in other:
        at = interpolate(base, x)
        if at is not None:
            gaps.append(at - float(y))
    return {"compared": len(gaps), "base_better_or_equal": int(sum(g >= -1e-12 for g in gaps)),
            "mean_gap_points": 100 * float(np.mean(gaps)) if gaps else float("nan")}


def matched_at_flops(base_speedups: Sequence[float], speedup: float) -> Optional[int]:
    """Index of the cheapest-but-not-cheaper match: the base point with the smallest speed-up that is at least
    ``speedup`` (so the base spends no more FLOPs), or None when every base point is slower."""
    candidates = [(s, i) for i, s in enumerate(base_speedups) if s >= speedup - 1e-12]
    return min(candidates)[1] if candidates else None
