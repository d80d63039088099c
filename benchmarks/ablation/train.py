"""Training one lever at one seed: its supernet (shared with the baseline when the lever leaves it alone) and its
branches. A stage finished with the same configuration is found, not trained again, so an interrupted ablation goes
on where it stopped."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from paddle_dynafast.config import SelfDistillConfig, SupernetConfig
from paddle_dynafast.train.distill import self_distill
from paddle_dynafast.train.stage import StageResult
from paddle_dynafast.train.supernet import train_supernet

from .levers import Lever, combine
from .runs import Setup, configs


@dataclass(frozen=True)
class Trained:
    """The two stages of one lever at one seed."""

    lever: Lever
    supernet_config: SupernetConfig
    distill_config: SelfDistillConfig
    supernet: StageResult
    distill: StageResult


def train(setup: Setup, name: str, seed: int, table: Dict[str, Lever]) -> Trained:
    """Train (or find) the supernet, then the branches, of lever ``name`` at ``seed``."""
    lever = combine(name, table)
    supernet_config, distill_config = configs(setup, name, lever, seed, table)
    supernet = train_supernet(supernet_config, trust_pickle=setup.trust_pickle)
    distill = self_distill(distill_config, trust_pickle=setup.trust_pickle)
    return Trained(lever, supernet_config, distill_config, supernet, distill)
