"""Comparisons on the same sentences: every width of a lever's supernet against the teacher, and every lever against
the baseline of its seed (paired-bootstrap intervals and McNemar's test, :func:`paddle_dynafast.stats.paired_against`;
the curves at equal FLOPs, :func:`paddle_dynafast.analysis.criteria.compare_at_equal_flops`)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from paddle_dynafast import atomic, data, stats
from paddle_dynafast.analysis import criteria
from paddle_dynafast.analysis.evaluate import PROBS_FILE, SplitProbabilities
from paddle_dynafast.config import BootstrapConfig
from paddle_dynafast.model.exit import simulate_exits
from paddle_dynafast.model.loading import load_classifier
from paddle_dynafast.model.over_loader import predict_logits
from paddle_dynafast.model.stage_info import StageInfo

from .runs import Setup


def paired(correct: np.ndarray, reference: np.ndarray, bootstrap: BootstrapConfig) -> Dict[str, float]:
    """``correct`` against ``reference`` (per-example correctness on the same sentences): difference, interval,
    McNemar's p."""
    return stats.paired_against(correct, reference, bootstrap.samples, bootstrap.seed, bootstrap.level)


def teacher_correct(setup: Setup, split: str) -> np.ndarray:
    """The teacher's per-example correctness on ``split`` (one pass, kept in OUTPUT/teacher-SPLIT.npy)."""
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
            row[f"{split}_vs_teacher"] = paired(correct, teacher, setup.bootstrap)
    return result


def correct_at(out: Path, split: str, width: float, speed: float) -> np.ndarray:
    """Per-example correctness of one (width, speed) point, re-simulated from the saved probabilities."""
    probs = SplitProbabilities.load(out / split / PROBS_FILE)
    p, _, _ = simulate_exits(probs.probs[width], speed)
    return p.argmax(-1) == probs.gold


def evaluation_points(out: Path, split: str) -> List[Dict]:
    """The grid points of the evaluation of ``split`` written in ``out``."""
    return atomic.read_json(out / split / "evaluation.json")["points"]


def against_baseline(rows: List[Dict], setup: Setup, speeds: Sequence[float] = (0.0, 0.1, 0.3)) -> None:
    """Each lever against the baseline of its seed on the same test sentences: paired interval and McNemar at every
    width for ``speeds``, and the equal-FLOPs comparison of their curves (entropy exits). Written into each row as
    ``vs_baseline_test``."""
    base = {r["seed"]: r for r in rows if r["lever"] == "baseline"}
    for row in rows:
        b = base.get(row["seed"])
        if b is None or row is b:
            continue
        out, base_out = Path(row["paths"]["evaluation"]), Path(b["paths"]["evaluation"])
        grid = evaluation_points(out, "test")
        base_grid = evaluation_points(base_out, "test")
        pairs = {}
        for width in sorted({p["width"] for p in grid}, reverse=True):
            for speed in speeds:
                if any(p["width"] == width and abs(p["speed"] - speed) < 1e-9 for p in base_grid):
                    pairs[f"{width:g}@{speed:g}"] = paired(correct_at(out, "test", width, speed),
                                                           correct_at(base_out, "test", width, speed),
                                                           setup.bootstrap)
        curves = {}
        for width in sorted({p["width"] for p in grid}, reverse=True):
            mine = [(p["flops_speedup"], p["accuracy"]) for p in grid if p["width"] == width and 0 < p["speed"] < 1]
            theirs = [(p["flops_speedup"], p["accuracy"]) for p in base_grid if p["width"] == width]
            curves[str(width)] = criteria.compare_at_equal_flops(theirs, mine)  # baseline's curve at this lever's points
        row["vs_baseline_test"] = {"paired": pairs, "baseline_at_equal_flops": curves}
