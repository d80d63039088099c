"""``--adopt-baseline RUN``: a finished pipeline run made with the baseline's configuration, copied as the baseline of
the seed it was trained with instead of training that baseline again."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Sequence

from paddle_dynafast import atomic, data
from paddle_dynafast.config import to_dict
from paddle_dynafast.model.stage_info import STAGE_FILE, StageInfo, normalize_config

from .levers import Lever
from .runs import Setup, configs

ADOPT_IGNORED = ("output_dir", "teacher_dir", "model_dir", "data.data_dir")
"""Paths that may differ between an adopted run and the ablation's baseline (the examples are checked instead)."""


def flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    out: Dict[str, Any] = {}
    for key, value in d.items():
        out.update(flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def adopt_baseline(setup: Setup, run: Path, seeds: Sequence[int], table: Dict[str, Lever]) -> List[str]:
    """Copy a finished pipeline run's supernet and branches (``RUN/supernet``, ``RUN/dynafast``) as the baseline of
    the seed whose configuration they were made with, paths aside, so the baseline is not trained twice; the
    copies' stage.json point at their new places. ``RUN`` is only read. Returns what was adopted."""
    splits = data.load_splits(setup.data)
    dev = data.fingerprint(splits["dev"])
    adopted = []
    for seed in seeds:
        for source, config in zip((run / "supernet", run / "dynafast"), configs(setup, "baseline", table["baseline"],
                                                                              seed, table)):
            info = StageInfo.read(source)
            target = Path(config.output_dir)
            if not info.complete or StageInfo.read(target).complete:
                continue
            theirs = flatten(normalize_config(info.config, type(config)))
            mine = flatten(to_dict(config))
            differ = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k) and k not in ADOPT_IGNORED)
            written = atomic.read_json(source / STAGE_FILE)
            if written.get("dev_fingerprint") is not None:
                same_examples = written["dev_fingerprint"] == dev
            else:  # written before stage.json held a fingerprint: the same number of dev and test examples
                counts = written.get("num_examples", {})
                same_examples = all(counts.get(s) == len(splits[s]) for s in ("dev", "test") if s in splits)
            if differ or not same_examples:
                continue
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoint"), dirs_exist_ok=True)
            stage = atomic.read_json(target / STAGE_FILE)
            stage["config"] = {**stage["config"], **{k: v for k, v in to_dict(config).items()
                                                     if k in ("output_dir", "teacher_dir", "model_dir", "data")}}
            atomic.write_json(target / STAGE_FILE, stage)
            adopted.append(f"{source} -> {target}")
    return adopted
