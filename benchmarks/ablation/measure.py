"""Measuring one trained lever: the evaluation grids on dev and test, the operating points chosen on dev and measured
on test, the budget's promise on random re-splits, and the row of the tables that holds them all. Each evaluation
and set of re-splits is kept beside the row and read back by later calls made with the same configuration."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from paddle_dynafast import atomic
from paddle_dynafast.analysis.calibrate import calibrate_probabilities, resplit_promises
from paddle_dynafast.analysis.evaluate import PROBS_FILE, SplitProbabilities, run_evaluation
from paddle_dynafast.config import CalibrateConfig, EvaluateConfig, to_dict
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.model.flops import BertShape

from .levers import Lever
from .paired import widths_against_teacher
from .runs import Setup, evaluation_dir
from .train import train


def evaluate(setup: Setup, distill_dir: str, out: Path, speeds: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    """The dev and test grids of one distilled model (skipped when written with the same configuration)."""
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


def resplits(setup: Setup, distill_dir: str, out: Path, repeats: int,
             speeds: Optional[Sequence[float]] = None) -> Optional[Dict[str, Any]]:
    """The 0.5-point budget at confidence 0.9 chosen and measured on ``repeats`` random re-splits of the pooled dev
    and test examples, as `calibrate --resplits` does (NumPy only, about 3 s a re-split on SST-2). Kept in
    OUT/resplits.json with what it was computed from, so a later call (one that measures another lever beside the
    baseline, or ``--report``) reads it instead of computing it again."""
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


def operating_points(setup: Setup, distill_dir: str, out: Path,
                     speeds: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    """The calibrated points (chosen on dev, measured on test) from the evaluation's saved probabilities."""
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


def measure(setup: Setup, name: str, seed: int, table: Dict[str, Lever], speeds: Optional[Sequence[float]] = None,
            calibrate_speeds: Optional[Sequence[float]] = None, repeats: int = 0) -> Dict:
    """Train (or find) one lever at one seed and measure it; the row is also written to OUT/row.json."""
    started = time.perf_counter()
    trained = train(setup, name, seed, table)
    supernet, distill = trained.supernet.metrics, trained.distill.metrics
    distill_dir = trained.distill_config.output_dir
    out = evaluation_dir(setup, name, seed)
    grids = evaluate(setup, distill_dir, out, speeds)
    points = operating_points(setup, distill_dir, out, calibrate_speeds)
    resplit = resplits(setup, distill_dir, out, repeats, calibrate_speeds)
    widths = widths_against_teacher(setup, out)
    teacher = widths.pop("teacher")
    patience = grids["test"].get("patience_vs_entropy", {})
    row = {"lever": name, "seed": seed, "what": trained.lever.what, "teacher": teacher,
           "widths": widths, "points": points, "resplits": resplit, "patience_vs_entropy_test": patience,
           "full_model": {s: next(p for p in grids[s]["points"] if p["width"] == 1.0 and p["speed"] == 0.0)
                          for s in grids},
           "seconds": {"supernet": supernet["train_seconds"], "distill": distill["train_seconds"],
                       "this_call": round(time.perf_counter() - started, 1)},
           "steps": {"supernet": supernet["train_steps"], "distill": distill["train_steps"]},
           "paths": {"supernet": trained.supernet_config.output_dir, "distill": distill_dir,
                     "evaluation": str(out)}}
    atomic.write_json(out / "row.json", row)
    return row
