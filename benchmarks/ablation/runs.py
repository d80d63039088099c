"""Where one (lever, seed) run lives, and the configurations of its two stages.

``OUTPUT/seed-S/supernet-KEY`` (KEY: the parts of the lever that change the supernet, else ``baseline``, so levers
that leave the supernet alone share the baseline's), ``OUTPUT/seed-S/dynafast-LEVER`` and
``OUTPUT/seed-S/evaluation-LEVER``."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Tuple

from paddle_dynafast.config import BootstrapConfig, DataConfig, SelfDistillConfig, SupernetConfig, default

from .levers import BASELINE_DISTILL, Lever, supernet_key


@dataclass(frozen=True)
class Setup:
    """What every run of one ablation shares."""

    teacher: str
    """The finetune stage directory every lever starts from."""
    data: DataConfig
    output: Path
    """The ablation directory."""
    quick: bool
    """3 steps per stage, importance on 32 examples."""
    bootstrap: BootstrapConfig
    trust_pickle: bool = False
    """Read pickled weights (``.pdparams``) of runs made by an earlier version (the teacher, an adopted baseline)."""


def evaluation_dir(setup: Setup, name: str, seed: int) -> Path:
    """Where the evaluations and the row of lever ``name`` at ``seed`` are written."""
    return setup.output / f"seed-{seed}" / f"evaluation-{name}"


def configs(setup: Setup, name: str, lever: Lever, seed: int,
            table: Dict[str, Lever]) -> Tuple[SupernetConfig, SelfDistillConfig]:
    """``(SupernetConfig, SelfDistillConfig)`` of one lever and seed."""
    root = setup.output / f"seed-{seed}"
    quick = {"max_steps": 3} if setup.quick else {}
    s_train = replace(default(SupernetConfig, "train"), seed=seed, **quick, **lever.supernet_train)
    supernet = SupernetConfig(output_dir=str(root / f"supernet-{supernet_key(name, table)}"), teacher_dir=setup.teacher,
                              data=setup.data, train=s_train, **({"importance_examples": 32} if setup.quick else {}),
                              **lever.supernet)
    d_train = replace(default(SelfDistillConfig, "train"), seed=seed, **quick, **lever.distill_train)
    distill = SelfDistillConfig(output_dir=str(root / f"dynafast-{name}"), model_dir=supernet.output_dir,
                                data=setup.data, train=d_train, **{**BASELINE_DISTILL, **lever.distill})
    return supernet, distill
