"""``--plan``: the runs still to make and their estimated training time, training nothing."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Sequence

from paddle_dynafast import data
from paddle_dynafast.config import SelfDistillConfig, SupernetConfig
from paddle_dynafast.model.stage_info import StageInfo

from .levers import Lever, combine
from .runs import Setup, configs

SECONDS_PER_STEP = {"supernet": 5.54, "distill": 1.19}
"""Training seconds per step on SST-2 (MiniLM, batch 32, max 64 tokens, 2 cores), from docs/results.md: the supernet
3340 s for 603 steps (four widths a step; partly shared with other jobs, so an upper bound), the branches 774 s for
651 steps. --plan uses the baseline's own measurement instead once it exists."""


def steps(config: SupernetConfig | SelfDistillConfig, examples: int) -> int:
    """Optimizer steps of a stage: epochs x batches of its training texts (augmented copies included)."""
    copies = 1 + config.augment.copies
    total = config.train.epochs * math.ceil(examples * copies / config.train.batch_size)
    return min(total, config.train.max_steps) if config.train.max_steps else total


def plan(setup: Setup, names: Sequence[str], seeds: Sequence[int], table: Dict[str, Lever]) -> List[str]:
    """The runs to make and their estimated training time (skipping finished ones)."""
    train_texts = len(data.load_splits(setup.data)["train"])
    rate = dict(SECONDS_PER_STEP)
    for stage, prefix in (("supernet", "supernet-baseline"), ("distill", "dynafast-baseline")):
        for seed in seeds:
            metrics = setup.output / f"seed-{seed}" / prefix / "metrics.json"
            if metrics.is_file():
                m = json.loads(metrics.read_text())
                rate[stage] = m["train_seconds"] / max(1, m["train_steps"])
    lines, total, seen = [], 0.0, set()
    for seed in seeds:
        for name in names:
            supernet, distill = configs(setup, name, combine(name, table), seed, table)
            for stage, config in (("supernet", supernet), ("distill", distill)):
                if config.output_dir in seen:
                    continue
                seen.add(config.output_dir)
                extra = len(data.read_texts(config.unlabeled_file)) if config.unlabeled_file else 0
                held = config.importance_examples if stage == "supernet" else 0
                n = steps(config, train_texts - min(held, train_texts // 2) + extra)
                done = StageInfo.read(config.output_dir).is_complete_with(
                    "supernet" if stage == "supernet" else "distill", config)
                seconds = 0.0 if done else n * rate[stage]
                total += seconds
                lines.append(f"seed {seed} {stage:8s} {Path(config.output_dir).name:40s} {n:6d} steps  "
                             + ("done" if done else f"~{seconds / 60:5.0f} min"))
    lines.append(f"training still to do: ~{total / 3600:.1f} h on 2 cores at {rate['supernet']:.2f} s/step (supernet) "
                 f"and {rate['distill']:.2f} s/step (branches), plus about 5 min of evaluation per lever and seed")
    return lines
