"""The label set of a training split, and label ids.

A label that looks like a typo (rare, or not a whole number among whole numbers)
is refused unless the label set is given explicitly (:func:`training_labels`).
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import List, Optional, Sequence

from ..errors import DataError
from .readers import Example

logger = logging.getLogger(__name__)


MIN_LABEL_COUNT = 5
"""A training label seen fewer times than this, and ten times less often than the commonest, looks like a typo."""


def _whole(label: str) -> bool:
    return label.lstrip("-").isdigit()


def label_list(examples: Sequence[Example]) -> List[str]:
    """The labels seen in ``examples``, sorted (numerically when they are all whole numbers)."""
    labels = {e.label for e in examples if e.label is not None}
    if not labels:
        raise DataError("no labelled examples")
    if all(_whole(label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def training_labels(examples: Sequence[Example], explicit: Optional[Sequence[str]] = None) -> List[str]:
    """The label set to train on, in the classifier's order.

    ``explicit`` (``--labels``) is taken as it is; a training label outside it is an
    error naming its line. Without it, the training split's labels
    (:func:`label_list`), refusing, with the line of the first example, a label
    that is not a whole number among whole numbers (``0.0`` or ``pos`` among
    ``0``/``1``, or the other way round), or one seen fewer than
    :data:`MIN_LABEL_COUNT` times and ten times less often than the commonest:
    each silently makes a class of its own otherwise.
    """
    if explicit is not None:
        explicit = list(explicit)
        outside = next((e for e in examples if e.label is not None and e.label not in explicit), None)
        if outside is not None:
            raise DataError(f"{outside.where}: label {outside.label!r} is not one of --labels {explicit}")
        unseen = [label for label in explicit if label not in {e.label for e in examples}]
        if unseen:
            logger.warning("labels %s of %s never occur in the training split", unseen, explicit)
        return explicit
    labels = label_list(examples)
    counts = Counter(e.label for e in examples if e.label is not None)
    whole = [label for label in labels if _whole(label)]
    if whole and len(whole) < len(labels):
        odd_whole = sum(counts[label] for label in whole) * 2 < sum(counts.values())
        odd = next(e for e in examples if e.label is not None and _whole(e.label) == odd_whole)
        usual = [label for label in labels if _whole(label) != odd_whole]
        raise DataError(f"{odd.where}: label {odd.label!r} is {'' if odd_whole else 'not '}a whole number, unlike the "
                        f"training labels {usual}; a typo? Pass --labels with the whole label set to train on it as "
                        "it is")
    commonest = max(counts.values())
    rare = [label for label in labels if counts[label] < MIN_LABEL_COUNT and counts[label] * 10 < commonest]
    if rare:
        odd = next(e for e in examples if e.label == rare[0])
        raise DataError(f"{odd.where}: label {odd.label!r} occurs {counts[odd.label]} time(s) in "
                        f"{sum(counts.values())} training examples, the label {counts.most_common(1)[0][0]!r} "
                        f"{commonest} times; a typo? Pass --labels with the whole label set to train on it as it is")
    return labels


def label_ids(examples: Sequence[Example], labels: Sequence[str]) -> List[int]:
    """Label ids of ``examples`` in ``labels``; an unknown label is an error naming its line."""
    index = {label: i for i, label in enumerate(labels)}
    ids = []
    for e in examples:
        if e.label is None:
            ids.append(-1)
        elif e.label not in index:
            raise DataError(f"{e.where}: unknown label {e.label!r}; the training labels are {list(labels)}")
        else:
            ids.append(index[e.label])
    return ids
