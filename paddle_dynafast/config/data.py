"""Where the examples come from and how they are cut: :class:`DataConfig`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import ConfigError
from .base import check_finite, check_seed


def normalize_labels(labels) -> Optional[Tuple[str, ...]]:
    """An explicit label set as a tuple of distinct, non-empty strings without spaces (at least 2), or None."""
    if labels is None:
        return None
    if isinstance(labels, str):
        raise ConfigError(f"labels must be a list of label strings, got the string {labels!r}")
    labels = tuple(str(label) for label in labels)
    bad = [label for label in labels if not label or label != label.strip() or any(c.isspace() for c in label)]
    if bad:
        raise ConfigError(f"label {bad[0]!r} is empty or holds white space")
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ConfigError(f"labels {list(labels)} must be at least 2 distinct labels")
    return labels


@dataclass(frozen=True)
class DataConfig:
    """Where the examples come from and how they are cut."""

    data_dir: str
    """Folder with ``train``/``dev``/``test`` files (``.txt`` ``LABEL TEXT`` lines or ``.tsv``)."""
    max_seq_len: int = 128
    """Tokens per example including [CLS] and [SEP]; longer texts are truncated and counted."""
    max_examples: Optional[int] = None
    """Keep only the first N examples of each split (quick runs); None keeps all."""
    max_eval_examples: Optional[int] = None
    """Keep only the first N examples of dev and test (quick runs: evaluation is most of their time); None leaves
    them to ``max_examples``."""
    dev_fraction: float = 0.1
    """When the folder has no dev split, this share of train is held out as dev."""
    split_seed: int = 42
    """Seeds which training examples are held out as dev when the folder has no dev split."""
    labels: Optional[Tuple[str, ...]] = None
    """The label set in the classifier's order; None takes the training split's labels, refusing a label that is
    rare (a typo?) or not a whole number among whole numbers (``0.0`` among ``0``/``1``)."""
    holdout: int = 0
    """Training examples kept out of every training stage (a seeded slice of train) and added to dev when a model is
    calibrated: more examples to promise on. 0: none."""

    def __post_init__(self) -> None:
        check_finite(self)
        check_seed("split_seed", self.split_seed)
        object.__setattr__(self, "labels", normalize_labels(self.labels))
        if self.max_seq_len < 3:
            raise ConfigError(f"max_seq_len {self.max_seq_len} is too short: [CLS] and [SEP] need 2 of them")
        if self.max_examples is not None and self.max_examples < 1:
            raise ConfigError(f"max_examples must be >= 1 or None, got {self.max_examples}")
        if self.max_eval_examples is not None and self.max_eval_examples < 1:
            raise ConfigError(f"max_eval_examples must be >= 1 or None, got {self.max_eval_examples}")
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, int) or self.holdout < 0:
            raise ConfigError(f"holdout must be a whole number >= 0, got {self.holdout!r}")
        if not 0 < self.dev_fraction < 1:
            raise ConfigError(f"dev_fraction {self.dev_fraction} is not in (0, 1)")
