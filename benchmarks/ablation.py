"""The accuracy levers of issue #13, each trained from one teacher with the same seeds and budget, measured on dev
and test with paired-bootstrap intervals: writes ablation.json and ablation.md (benchmarks/report.py shows them).

Every lever changes the supernet stage, the branch stage, or both (`--levers a b+c`: `+` combines levers); levers
that leave the supernet alone share the baseline's. For every seed and lever: the supernet's widths against the
teacher (dev and test), the evaluation grids on dev and test (every point against the full model; PABEE patience
against entropy at equal FLOPs), the operating points chosen on dev and measured on test (the accuracy budget of
0.5 points at confidence 0.9, the best dev accuracy with >= 3x and >= 5x fewer FLOPs), and each lever against the
baseline of its seed on the same test sentences (McNemar's test, paired intervals). Finished stages and evaluations
are skipped, so an interrupted ablation continues where it stopped; `--plan` prints the runs and an estimate of
their time without training anything. Separate calls (one lever or seed each, say, run side by side) share the
output directory; `--report` writes the tables of everything measured there.

    .venv/bin/python benchmarks/ablation.py --teacher runs/sst2/teacher --data ../shared/data/sst2 \\
        --output runs/sst2-ablation --seeds 42 43 44 --adopt-baseline runs/sst2 --plan
    .venv/bin/python benchmarks/ablation.py --teacher runs/sst2/teacher --data ../shared/data/sst2 \\
        --output runs/sst2-ablation --seeds 42 43 44 --levers baseline logit-0.1 supernet-augment branches-mix
    .venv/bin/python benchmarks/ablation.py --teacher runs/sst2/teacher --data ../shared/data/sst2 \\
        --output runs/ablation-quick --quick      # 160 examples per split, 3 steps per stage: minutes
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

DEFAULT_LEVERS = ("baseline", "logit-0.1", "supernet-6-epochs", "supernet-augment", "branches-labels",
                  "branches-mix", "branches-t2", "branches-augment", "branches-256", "branches-mean")
"""What `--levers` defaults to (supernet-unlabeled needs --unlabeled; supernet-augment-3-epochs is long)."""

SECONDS_PER_STEP = {"supernet": 5.54, "distill": 1.19}
"""Training seconds per step on SST-2 (MiniLM, batch 32, max 64 tokens, 2 cores), from docs/results.md: the supernet
3340 s for 603 steps (four widths a step; partly shared with other jobs, so an upper bound), the branches 774 s for
651 steps. --plan uses the baseline's own measurement instead once it exists."""


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
    from paddle_dynafast.config import AugmentConfig, BranchConfig

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


# ----------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Setup:
    teacher: str
    data: Any  # DataConfig
    output: Path
    quick: bool
    bootstrap: Any  # BootstrapConfig
    trust_pickle: bool = False
    """Read pickled weights (``.pdparams``) of runs made by an earlier version (the teacher, an adopted baseline)."""


def configs(setup: Setup, name: str, lever: Lever, seed: int, table: Dict[str, Lever]):
    """``(SupernetConfig, SelfDistillConfig)`` of one lever and seed."""
    from paddle_dynafast.config import SelfDistillConfig, SupernetConfig, default

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


def steps(config, examples: int) -> int:
    """Optimizer steps of a stage: epochs x batches of its training texts (augmented copies included)."""
    copies = 1 + config.augment.copies
    total = config.train.epochs * math.ceil(examples * copies / config.train.batch_size)
    return min(total, config.train.max_steps) if config.train.max_steps else total


def plan(setup: Setup, names: Sequence[str], seeds: Sequence[int], table: Dict[str, Lever]) -> List[str]:
    """The runs to make and their estimated training time (skipping finished ones)."""
    from paddle_dynafast import data
    from paddle_dynafast.model.stage_info import StageInfo

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


# ----------------------------------------------------------------------------- measuring


def _paired(correct: np.ndarray, reference: np.ndarray, bootstrap) -> Dict[str, float]:
    from paddle_dynafast import stats

    return stats.paired_against(correct, reference, bootstrap.samples, bootstrap.seed, bootstrap.level)


def evaluate(setup: Setup, distill_dir: str, out: Path, speeds=None) -> Dict[str, Any]:
    """The dev and test grids of one distilled model (skipped when written with the same configuration)."""
    from paddle_dynafast import atomic
    from paddle_dynafast.analysis.evaluate import run_evaluation
    from paddle_dynafast.config import EvaluateConfig, to_dict

    grids = {}
    for split in ("dev", "test"):
        kwargs = {"speeds": speeds} if speeds else {}
        config = EvaluateConfig(model_dir=distill_dir, output_dir=str(out / split), data=setup.data, split=split,
                                bootstrap=setup.bootstrap, **kwargs)
        path = out / split / "evaluation.json"
        if not atomic.written_with(path, to_dict(config)):
            run_evaluation(config, overwrite=True, trust_pickle=setup.trust_pickle)
        grids[split] = atomic.read_json(path)
    return grids


def resplits(setup: Setup, distill_dir: str, out: Path, repeats: int, speeds=None) -> Optional[Dict[str, Any]]:
    """The 0.5-point budget at confidence 0.9 chosen and measured on ``repeats`` random re-splits of the pooled dev
    and test examples, as `calibrate --resplits` does (NumPy only, about 3 s a re-split on SST-2). Kept in
    OUT/resplits.json with what it was computed from, so a later call (one that measures another lever beside the
    baseline, or ``--report``) reads it instead of computing it again."""
    from paddle_dynafast import atomic
    from paddle_dynafast.analysis.calibrate import resplit_promises
    from paddle_dynafast.analysis.evaluate import PROBS_FILE, SplitProbabilities
    from paddle_dynafast.config import CalibrateConfig, to_dict
    from paddle_dynafast.model.dynafast import DynaFastModel
    from paddle_dynafast.model.flops import BertShape

    if not repeats:
        return None
    kwargs = {"speeds": speeds} if speeds else {}
    config = CalibrateConfig(model_dir=distill_dir, output_dir=str(out), data=setup.data, max_accuracy_drop=0.5,
                             confidence=0.9, bootstrap=setup.bootstrap, **kwargs)
    # the evaluation's own record of what it measured: a new evaluation invalidates the re-splits made from it
    written = {"calibrate": to_dict(config), "repeats": repeats,
               "evaluations": [atomic.read_json(out / split / "evaluation.json").get("config")
                               for split in ("dev", "test")]}
    path = out / "resplits.json"
    if atomic.written_with(path, written):
        return atomic.read_json(path)["resplits"]
    model = DynaFastModel.load(distill_dir, trust_pickle=setup.trust_pickle)
    result = resplit_promises(SplitProbabilities.load(out / "dev" / PROBS_FILE),
                              SplitProbabilities.load(out / "test" / PROBS_FILE),
                              BertShape.from_config(model.backbone.config), model.branches.config, config,
                              repeats).to_json()
    atomic.write_json(path, {"config": written, "resplits": result})
    return result


def operating_points(setup: Setup, distill_dir: str, out: Path, speeds=None) -> Dict[str, Any]:
    """The calibrated points (chosen on dev, measured on test) from the evaluation's saved probabilities."""
    from paddle_dynafast.analysis.calibrate import calibrate_probabilities
    from paddle_dynafast.analysis.evaluate import PROBS_FILE, SplitProbabilities
    from paddle_dynafast.config import CalibrateConfig
    from paddle_dynafast.model.dynafast import DynaFastModel
    from paddle_dynafast.model.flops import BertShape

    model = DynaFastModel.load(distill_dir, trust_pickle=setup.trust_pickle)
    shape, branch = BertShape.from_config(model.backbone.config), model.branches.config
    dev = SplitProbabilities.load(out / "dev" / PROBS_FILE)
    test = SplitProbabilities.load(out / "test" / PROBS_FILE)
    kwargs = {"speeds": speeds} if speeds else {}
    result, calibrations = {}, {}
    for key, drop, speedup in (("budget", 0.5, 3.0), ("3x", 0.5, 3.0), ("5x", 1.5, 5.0)):
        config = CalibrateConfig(model_dir=distill_dir, output_dir=str(out), data=setup.data, max_accuracy_drop=drop,
                                 min_flops_speedup=speedup, confidence=0.9, bootstrap=setup.bootstrap, **kwargs)
        if (drop, speedup) not in calibrations:
            calibrations[drop, speedup] = calibrate_probabilities(dev, test, shape, branch, config)
        calibration = calibrations[drop, speedup]
        chosen = (calibration.fewest_flops_within_accuracy_budget if key == "budget"
                  else calibration.best_accuracy_within_flops_budget)
        measured = None if chosen is None else calibration.measured_on_test(chosen.width, chosen.speed)
        result[key] = {"budget_points": drop, "min_flops_speedup": speedup,
                       "dev": None if chosen is None else asdict(chosen),
                       "test": None if measured is None else asdict(measured),
                       "held": None if measured is None else calibration.budget.held(measured.delta)}
    return result


def teacher_correct(setup: Setup, split: str) -> np.ndarray:
    """The teacher's per-example correctness on ``split`` (one pass, kept in OUTPUT/teacher-SPLIT.npy)."""
    from paddle_dynafast import data
    from paddle_dynafast.model.loading import load_classifier
    from paddle_dynafast.model.over_loader import predict_logits
    from paddle_dynafast.model.stage_info import StageInfo

    path = setup.output / f"teacher-{split}.npy"
    if not path.is_file():
        loaded = load_classifier(setup.teacher, trust_pickle=setup.trust_pickle)
        labels = StageInfo.read(setup.teacher).labels_or_numbers(loaded.model.config.num_labels)
        features = data.encode(data.load_splits(setup.data)[split], loaded.tokenizer, setup.data.max_seq_len, labels)
        loader = data.make_loader(features, loaded.tokenizer.pad_token_id, 64, shuffle=False)
        correct = predict_logits(loaded.model, loader).argmax(-1) == np.array([f.label for f in features])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, correct)
    return np.load(path)


def widths_against_teacher(setup: Setup, out: Path) -> Dict[str, Dict]:
    """Every width's final classifier (the supernet at that width) against the teacher on dev and test, from the
    evaluation's saved probabilities: accuracy, paired interval, McNemar."""
    from paddle_dynafast.analysis.evaluate import PROBS_FILE, SplitProbabilities

    result: Dict[str, Dict] = {}
    for split in ("dev", "test"):
        probs = SplitProbabilities.load(out / split / PROBS_FILE)
        teacher = teacher_correct(setup, split)
        if len(teacher) != len(probs.gold):
            raise SystemExit(f"the teacher was measured on {len(teacher)} {split} examples, the model on "
                             f"{len(probs.gold)}: remove {setup.output}/teacher-{split}.npy")
        result.setdefault("teacher", {})[f"{split}_accuracy"] = float(teacher.mean())
        for width, p in probs.probs.items():
            correct = p[:, -1].argmax(-1) == probs.gold
            row = result.setdefault(str(width), {})
            row[f"{split}_accuracy"] = float(correct.mean())
            row[f"{split}_vs_teacher"] = _paired(correct, teacher, setup.bootstrap)
    return result


def correct_at(out: Path, split: str, width: float, speed: float) -> np.ndarray:
    """Per-example correctness of one (width, speed) point, re-simulated from the saved probabilities."""
    from paddle_dynafast.analysis.evaluate import PROBS_FILE, SplitProbabilities
    from paddle_dynafast.model.exit import simulate_exits

    probs = SplitProbabilities.load(out / split / PROBS_FILE)
    p, _, _ = simulate_exits(probs.probs[width], speed)
    return p.argmax(-1) == probs.gold


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in d.items():
        out.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


ADOPT_IGNORED = ("output_dir", "teacher_dir", "model_dir", "data.data_dir")
"""Paths that may differ between an adopted run and the ablation's baseline (the examples are checked instead)."""


def adopt_baseline(setup: Setup, run: Path, seeds: Sequence[int], table: Dict[str, Lever]) -> List[str]:
    """Copy a finished pipeline run's supernet and branches (``RUN/supernet``, ``RUN/dynafast``) as the baseline of
    the seed whose configuration they were made with, paths aside, so the baseline is not trained twice; the
    copies' stage.json point at their new places. ``RUN`` is only read. Returns what was adopted."""
    import shutil

    from paddle_dynafast import atomic, data
    from paddle_dynafast.config import to_dict
    from paddle_dynafast.model.stage_info import STAGE_FILE, StageInfo, normalize_config

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
            theirs = _flatten(normalize_config(info.config, type(config)))
            mine = _flatten(to_dict(config))
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


def measure(setup: Setup, name: str, seed: int, table: Dict[str, Lever], speeds=None, calibrate_speeds=None,
            repeats: int = 0) -> Dict:
    """Train (or find) one lever at one seed and measure it."""
    from paddle_dynafast import atomic
    from paddle_dynafast.train.distill import self_distill
    from paddle_dynafast.train.supernet import train_supernet

    lever = combine(name, table)
    supernet_config, distill_config = configs(setup, name, lever, seed, table)
    started = time.perf_counter()
    supernet = train_supernet(supernet_config, trust_pickle=setup.trust_pickle).metrics
    distill = self_distill(distill_config, trust_pickle=setup.trust_pickle).metrics
    out = setup.output / f"seed-{seed}" / f"evaluation-{name}"
    grids = evaluate(setup, distill_config.output_dir, out, speeds)
    points = operating_points(setup, distill_config.output_dir, out, calibrate_speeds)
    resplit = resplits(setup, distill_config.output_dir, out, repeats, calibrate_speeds)
    widths = widths_against_teacher(setup, out)
    teacher = widths.pop("teacher")
    patience = grids["test"].get("patience_vs_entropy", {})
    row = {"lever": name, "seed": seed, "what": lever.what, "teacher": teacher,
           "widths": widths, "points": points, "resplits": resplit, "patience_vs_entropy_test": patience,
           "full_model": {s: next(p for p in grids[s]["points"] if p["width"] == 1.0 and p["speed"] == 0.0)
                          for s in grids},
           "seconds": {"supernet": supernet["train_seconds"], "distill": distill["train_seconds"],
                       "this_call": round(time.perf_counter() - started, 1)},
           "steps": {"supernet": supernet["train_steps"], "distill": distill["train_steps"]},
           "paths": {"supernet": supernet_config.output_dir, "distill": distill_config.output_dir,
                     "evaluation": str(out)}}
    atomic.write_json(out / "row.json", row)
    return row


def finished_rows(output: Path, table: Dict[str, Lever]) -> List[Dict]:
    """Every (lever, seed) measured in ``output`` so far, whichever call measured it: by seed, then in the order of
    the lever table (a combination after its first lever)."""
    order = {name: i for i, name in enumerate(table)}
    rows = [json.loads(path.read_text()) for path in output.glob("seed-*/evaluation-*/row.json")]
    for row in rows:  # a lever's description as the table words it now (what it changes is in its directory names)
        if all(part in table for part in row["lever"].split("+")):
            row["what"] = combine(row["lever"], table).what
    return sorted(rows, key=lambda r: (r["seed"], order.get(r["lever"].split("+")[0], len(order)), r["lever"]))


def against_baseline(rows: List[Dict], setup: Setup, speeds: Sequence[float] = (0.0, 0.1, 0.3)) -> None:
    """Each lever against the baseline of its seed on the same test sentences: paired interval and McNemar at every
    width for ``speeds``, and the equal-FLOPs comparison of their curves (entropy exits)."""
    from paddle_dynafast.analysis import criteria

    base = {r["seed"]: r for r in rows if r["lever"] == "baseline"}
    for row in rows:
        b = base.get(row["seed"])
        if b is None or row is b:
            continue
        out, base_out = Path(row["paths"]["evaluation"]), Path(b["paths"]["evaluation"])
        grid = setup_grid(out, "test")
        base_grid = setup_grid(base_out, "test")
        paired = {}
        for width in sorted({p["width"] for p in grid}, reverse=True):
            for speed in speeds:
                if any(p["width"] == width and abs(p["speed"] - speed) < 1e-9 for p in base_grid):
                    paired[f"{width:g}@{speed:g}"] = _paired(correct_at(out, "test", width, speed),
                                                             correct_at(base_out, "test", width, speed),
                                                             setup.bootstrap)
        curves = {}
        for width in sorted({p["width"] for p in grid}, reverse=True):
            mine = [(p["flops_speedup"], p["accuracy"]) for p in grid if p["width"] == width and 0 < p["speed"] < 1]
            theirs = [(p["flops_speedup"], p["accuracy"]) for p in base_grid if p["width"] == width]
            curves[str(width)] = criteria.compare_at_equal_flops(theirs, mine)  # baseline's curve at this lever's points
        row["vs_baseline_test"] = {"paired": paired, "baseline_at_equal_flops": curves}


def setup_grid(out: Path, split: str) -> List[Dict]:
    from paddle_dynafast import atomic

    return atomic.read_json(out / split / "evaluation.json")["points"]


# ----------------------------------------------------------------------------- the tables


def _ci(d: Optional[Dict], sign: float = 1.0) -> str:
    """``+0.57 [-0.10, +1.20]`` in points (``sign`` -1 turns a difference into a drop)."""
    if not d:
        return ""
    lo, hi = sorted((sign * d["low"], sign * d["high"]))
    return f"{100 * sign * d['delta']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"


def _point_ci(p: Optional[Dict]) -> str:
    if not p or p.get("delta") is None:
        return ""
    return _ci({"delta": p["delta"], "low": p["delta_low"], "high": p["delta_high"]}, -1.0)


def markdown(rows: List[Dict]) -> str:
    """The ablation tables: widths against the teacher, operating points, against the baseline, patience, time."""
    widths = sorted({w for r in rows for w in r["widths"]}, key=float, reverse=True)
    narrow = [w for w in widths if w != "1.0"]
    out = ["Every lever from the same teacher with the same seeds; differences in points with paired-bootstrap 95 % "
           "intervals (the same sentences resampled for both systems); drops are the full model (width 1.0, speed 0) "
           "minus the point.", "", "Levers:", ""]
    for name in dict.fromkeys(r["lever"] for r in rows):
        out.append(f"- `{name}`: {next(r['what'] for r in rows if r['lever'] == name)}")
    out += ["", "#### Width: the supernet against the teacher (dev, then test)", "",
            "| lever | seed | " + " | ".join(f"width {w} dev Δ [95 % CI]" for w in widths) + " | "
            + " | ".join(f"width {w} test Δ" for w in narrow) + " |",
            "| --- | --- | " + " | ".join("---" for _ in widths + narrow) + " |"]
    for r in rows:
        out.append(f"| {r['lever']} | {r['seed']} | "
                   + " | ".join(_ci(r["widths"][w].get("dev_vs_teacher")) for w in widths) + " | "
                   + " | ".join(_ci(r["widths"][w].get("test_vs_teacher")) for w in narrow) + " |")
    out += ["", "#### Operating points chosen on dev, measured on test", "",
            "Budget: the fewest FLOPs whose dev drop stays within 0.5 points with probability 0.9 under the bootstrap "
            "(promised drop); >= 3x / >= 5x: the best dev accuracy with at least that FLOPs speed-up on dev (targets: "
            "test drop <= 0.5 and <= 1.5 points).", "",
            "| lever | seed | budget: width / speed | promised | test drop [95 % CI] | test speed-up | held "
            "| >= 3x: point | test drop [95 % CI] | test speed-up | <= 0.5 | >= 5x: point | test drop [95 % CI] "
            "| test speed-up | <= 1.5 |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = []
        for key in ("budget", "3x", "5x"):
            p = r["points"][key]
            if p["dev"] is None:
                cells.append("none | | | " + (" | " if key == "budget" else ""))
                continue
            where = f"w{p['dev']['width']:g} s{p['dev']['speed']:g}"
            test = p["test"]
            held = "yes" if p["held"] else "**no**"
            if key == "budget":
                cells.append(f"{where} | {100 * p['dev']['promised_drop']:.2f} | {_point_ci(test)} "
                             f"| {test['flops_speedup']:.2f}x | {held}")
            else:
                cells.append(f"{where} | {_point_ci(test)} | {test['flops_speedup']:.2f}x | {held}")
        out.append(f"| {r['lever']} | {r['seed']} | " + " | ".join(cells) + " |")
    held = [r["points"]["budget"]["held"] for r in rows if r["points"]["budget"]["held"] is not None]
    out += ["", f"The promise of the budget point (test drop within 0.5 points) held in {sum(held)} of {len(held)} "
            "(lever, seed) runs."]
    split_rows = [r for r in rows if r.get("resplits")]
    if split_rows:
        out += ["", "#### The budget's promise on re-split examples", "",
                f"The dev and test sentences of each model pooled and re-split at random "
                f"{split_rows[0]['resplits']['repeats']} times into parts of their sizes; each time the fewest-FLOPs "
                "point within 0.5 points at confidence 0.9 is chosen on the first and measured on the second. The "
                "measured drop is noisy too, so 'held' understates the probability the promise speaks of.", "",
                "| lever | seed | held | chose the full model | mean test drop | 90th percentile | median FLOPs speed-up |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in split_rows:
            x = r["resplits"]
            out.append(f"| {r['lever']} | {r['seed']} | {100 * x['held']:.0f} % | {100 * x['full_model']:.0f} % "
                       f"| {x['test_drop_mean']:.2f} | {x['test_drop_q90']:.2f} | {x['flops_speedup_median']:.2f}x |")
    compared = [r for r in rows if "vs_baseline_test" in r]
    if compared:
        keys = sorted({k for r in compared for k in r["vs_baseline_test"]["paired"]},
                      key=lambda k: (-float(k.split("@")[0]), float(k.split("@")[1])))
        keys = [k for k in keys if k.endswith("@0")] + [k for k in keys if not k.endswith("@0")]
        shown = keys[:8]
        out += ["", "#### Against the baseline of the same seed (test; lever minus baseline at the same width@speed, "
                "McNemar's p in brackets)", "",
                "| lever | seed | " + " | ".join(shown) + " | baseline ≥ lever at equal FLOPs (interpolated) |",
                "| --- | --- | " + " | ".join("---" for _ in shown) + " | --- |"]
        for r in compared:
            v = r["vs_baseline_test"]
            cells = [(_ci(v["paired"][k]) + f" (p {v['paired'][k]['mcnemar_p']:.2g})") if k in v["paired"] else ""
                     for k in shown]
            c = [x for x in v["baseline_at_equal_flops"].values() if x["compared"]]
            summary = (f"{sum(x['base_better_or_equal'] for x in c)} of {sum(x['compared'] for x in c)} points, "
                       f"{np.mean([x['mean_gap_points'] for x in c]):+.2f} points" if c else "")
            out.append(f"| {r['lever']} | {r['seed']} | " + " | ".join(cells) + f" | {summary} |")
    out += ["", "#### PABEE patience against entropy at equal FLOPs (test)", "",
            "| lever | seed | entropy ≥ patience (interpolated) | mean entropy − patience (points) |", "| --- | --- | --- | --- |"]
    for r in rows:
        c = [x for x in r["patience_vs_entropy_test"].values() if x["compared"]]
        if c:
            out.append(f"| {r['lever']} | {r['seed']} | {sum(x['base_better_or_equal'] for x in c)} of "
                       f"{sum(x['compared'] for x in c)} | {np.mean([x['mean_gap_points'] for x in c]):+.2f} |")
    out += ["", "#### Training time (s, wall clock on the machine of the run)", "",
            "| lever | seed | supernet steps | supernet s | branch steps | branch s |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['lever']} | {r['seed']} | {r['steps']['supernet']} | {r['seconds']['supernet']:.0f} "
                   f"| {r['steps']['distill']} | {r['seconds']['distill']:.0f} |")
    return "\n".join(out) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", required=True, help="a finetune stage directory (the teacher of every lever)")
    parser.add_argument("--data", required=True, help="the data folder the teacher was trained on")
    parser.add_argument("--output", required=True, help="the ablation directory")
    parser.add_argument("--levers", nargs="+", default=list(DEFAULT_LEVERS),
                        help=f"levers to run, 'a+b' combines (default: {' '.join(DEFAULT_LEVERS)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="training seeds (default 42)")
    parser.add_argument("--unlabeled", default=None, help="raw text for the supernet-unlabeled lever")
    parser.add_argument("--adopt-baseline", default=None, metavar="RUN",
                        help="a finished pipeline run (RUN/supernet, RUN/dynafast) made with the baseline's "
                             "configuration (the defaults, but distill --objective distill): copied as the baseline of "
                             "the seed it was trained with instead of training it again")
    parser.add_argument("--max-seq-len", type=int, default=None, help="default: the teacher's")
    parser.add_argument("--max-examples", type=int, default=None, help="the first N examples of each split")
    parser.add_argument("--bootstrap-samples", type=int, default=None, help="default 10000 (1000 with --quick)")
    parser.add_argument("--resplits", type=int, default=None,
                        help="random dev/test re-splits behind the promise check (default 50, 3 with --quick; 0: none)")
    parser.add_argument("--quick", action="store_true", help="160 examples per split, 3 steps per stage, coarse grids")
    parser.add_argument("--plan", action="store_true", help="print the runs and their estimated time, train nothing")
    parser.add_argument("--report", action="store_true",
                        help="write the tables from every (lever, seed) already measured in --output, by whichever "
                             "call, training nothing (--levers and --seeds are then ignored)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read pickled .pdparams weights of runs made by an earlier version (the teacher, an "
                             "adopted baseline); only for files you made yourself")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    import paddle

    from paddle_dynafast import atomic
    from paddle_dynafast.config import BootstrapConfig
    from paddle_dynafast.model.stage_info import StageInfo

    paddle.base.core.set_num_threads(args.threads)
    table = levers(args.unlabeled)
    names = list(dict.fromkeys(["baseline", *args.levers]))  # the baseline is what every lever is compared with
    for name in names:
        combine(name, table)  # unknown names fail before any work
    changes = {"max_examples": args.max_examples or (160 if args.quick else None)}
    if args.max_seq_len:
        changes["max_seq_len"] = args.max_seq_len
    data = StageInfo.read(args.teacher).data_config(args.data, **changes)
    samples = args.bootstrap_samples or (1000 if args.quick else 10000)
    setup = Setup(teacher=args.teacher, data=data, output=Path(args.output), quick=args.quick,
                  bootstrap=BootstrapConfig(samples=samples), trust_pickle=args.trust_pickle)
    if args.adopt_baseline:
        adopted = adopt_baseline(setup, Path(args.adopt_baseline), args.seeds, table)
        print("adopted: " + ("; ".join(adopted) if adopted else f"nothing ({args.adopt_baseline} does not match the "
                                                                  "baseline of any seed, or it is already there)"))
    if args.plan:
        print("\n".join(plan(setup, names, args.seeds, table)))
        return
    speeds = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0) if args.quick else None
    calibrate_speeds = tuple(round(0.05 * i, 2) for i in range(21)) if args.quick else None
    repeats = args.resplits if args.resplits is not None else (3 if args.quick else 50)
    if args.report:
        rows = finished_rows(setup.output, table)
        if not rows:
            raise SystemExit(f"{setup.output}: no lever measured yet")
    else:
        rows = [measure(setup, name, seed, table, speeds, calibrate_speeds, repeats)
                for seed in args.seeds for name in names]
    against_baseline(rows, setup)
    seeds = sorted({r["seed"] for r in rows})
    atomic.write_json(setup.output / "ablation.json", {"data": data.data_dir, "teacher": args.teacher,
                                                          "seeds": seeds, "quick": args.quick, "rows": rows})
    atomic.write_text(setup.output / "ablation.md", markdown(rows))
    print(f"-> {setup.output / 'ablation.md'}")


if __name__ == "__main__":
    main()
