"""The accuracy levers: what each changes in the supernet or branch stage, and ``a+b`` combinations of them."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional

from paddle_dynafast.config import AugmentConfig, BranchConfig

DEFAULT_LEVERS = ("baseline", "logit-0.1", "supernet-6-epochs", "supernet-augment", "branches-labels",
                  "branches-mix", "branches-t2", "branches-augment", "branches-256", "branches-mean")
"""What `--levers` defaults to (supernet-unlabeled needs --unlabeled; supernet-augment-3-epochs is long)."""


BASELINE_DISTILL = {"objective": "distill"}
"""What every lever's branches start from unless the lever changes it: FastBERT's self-distillation, the default
objective when these levers were measured. The mix of KL and labels that replaced it is the lever branches-mix, so
the tables compare the same two trainings as before and the runs already made stay valid."""


@dataclass(frozen=True)
class Lever:
    """Changes to the defaults: fields of SupernetConfig / SelfDistillConfig and of their TrainConfig."""

    what: str
    supernet: Dict[str, Any] = field(default_factory=dict)
    supernet_train: Dict[str, Any] = field(default_factory=dict)
    distill: Dict[str, Any] = field(default_factory=dict)
    distill_train: Dict[str, Any] = field(default_factory=dict)

    @property
    def changes_supernet(self) -> bool:
        return bool(self.supernet or self.supernet_train)


def levers(unlabeled: Optional[str]) -> Dict[str, Lever]:
    """Every lever by name (``supernet-unlabeled`` only with a file of raw text, ``unlabeled``)."""
    table = {
        "baseline": Lever("the defaults, but branches self-distilled (KL, T = 1; the default until branches-mix "
                          "became it): supernet 3 epochs, lambda_logit 1.0"),
        "logit-0.1": Lever("supernet logit-loss weight 0.1 (PaddleSlim tutorial) instead of 1.0 (PaddleNLP)",
                           supernet={"lambda_logit": 0.1}),
        "supernet-6-epochs": Lever("supernet trained 6 epochs instead of 3 (twice the steps)",
                                   supernet_train={"epochs": 6}),
        "supernet-augment": Lever("supernet on the training texts plus 2 augmented copies of each, 1 epoch (the "
                                  "baseline's number of steps)", supernet={"augment": AugmentConfig(copies=2)},
                                  supernet_train={"epochs": 1}),
        "supernet-augment-3-epochs": Lever("supernet on 2 augmented copies besides each text, 3 epochs (3x the "
                                           "steps)", supernet={"augment": AugmentConfig(copies=2)}),
        "branches-labels": Lever("branches trained on the gold labels (FastBERT's ablation)",
                                 distill={"objective": "labels"}),
        "branches-mix": Lever("branches on 0.5 KL to the final classifier + 0.5 cross-entropy to the labels",
                              distill={"objective": "mix", "mix_alpha": 0.5}),
        "branches-t2": Lever("branches self-distilled at temperature 2", distill={"temperature": 2.0}),
        "branches-augment": Lever("branches on the training texts plus 2 augmented copies of each, 1 epoch (the "
                                  "baseline's steps)", distill={"augment": AugmentConfig(copies=2)},
                                  distill_train={"epochs": 1}),
        "branches-256": Lever("wider branches (cls_hidden_size 256 instead of 128; they cost more FLOPs)",
                              distill={"branch": BranchConfig(cls_hidden_size=256, cls_num_attention_heads=2)}),
        "branches-mean": Lever("mean-pooling branches (the mean hidden state, a dense layer, the logits) instead of "
                               "FastBERT's self-attention branches: fewer operators, cheaper at batch 1",
                               distill={"branch": BranchConfig(kind="mean")}),
    }
    if unlabeled:
        table["supernet-unlabeled"] = Lever(f"supernet also distilled on the raw text of {unlabeled}",
                                            supernet={"unlabeled_file": str(unlabeled)})
    return table


def combine(name: str, table: Dict[str, Lever]) -> Lever:
    """A lever by name; ``a+b`` merges the changes of ``a`` and ``b`` (the same field twice is an error)."""
    parts = name.split("+")
    unknown = [p for p in parts if p not in table]
    if unknown:
        raise SystemExit(f"unknown lever(s) {unknown}; known: {sorted(table)} (supernet-unlabeled needs --unlabeled)")
    merged = Lever(" + ".join(table[p].what for p in parts))
    for part in parts:
        for key in ("supernet", "supernet_train", "distill", "distill_train"):
            mine, theirs = getattr(merged, key), getattr(table[part], key)
            clash = sorted(set(mine) & set(theirs))
            if clash:
                raise SystemExit(f"lever {name!r} sets {key} {clash} twice")
            merged = replace(merged, **{key: {**mine, **theirs}})
    return merged


def supernet_key(name: str, table: Dict[str, Lever]) -> str:
    """The directory name of a lever's supernet: the parts that change it, or the baseline's."""
    parts = [p for p in name.split("+") if table[p].changes_supernet]
    return "+".join(parts) if parts else "baseline"
