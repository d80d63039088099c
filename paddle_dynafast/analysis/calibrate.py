"""Choosing operating points: the speed per width for an accuracy budget, and the reverse.

On the dev split (:func:`paddle_dynafast.analysis.evaluate.speed_grid`):

* for each width, the largest ``speed`` whose accuracy stays within
  ``max_accuracy_drop`` points of the full model (width 1.0, speed 0);
* the single (width, speed) with the fewest mean FLOPs under that budget;
* the reverse: the best accuracy whose mean FLOPs are at most ``1 / min_flops_speedup``
  of the full model's.

Speeds are chosen on dev and reported on test, so the test numbers are not
tuned on themselves.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .. import artifacts, outputs
from ..config import CalibrateConfig, to_dict
from ..errors import ConfigError, DataError
from ..model.dynafast import DynaFastModel
from .evaluate import GridPoint, load_split, speed_grid


def full_model(points: Sequence[GridPoint]) -> GridPoint:
    """The reference point: width 1.0 at speed 0."""
    for p in points:
        if p.width == 1.0 and p.speed == 0.0:
            return p
    raise ConfigError("the grid has no point at width 1.0 and speed 0, the full model to compare with")


def _best(candidates: List[GridPoint], key) -> Optional[GridPoint]:
    return max(candidates, key=key) if candidates else None


def calibrate(points: Sequence[GridPoint], max_accuracy_drop: float, min_flops_speedup: float) -> Dict:
    """Operating points from a dev grid; accuracies in [0, 1], ``max_accuracy_drop`` in points (0.5 = 0.5 %)."""
    if max_accuracy_drop < 0:
        raise ConfigError(f"max_accuracy_drop must be >= 0 points, got {max_accuracy_drop}")
    if min_flops_speedup < 1:
        raise ConfigError(f"min_flops_speedup must be >= 1, got {min_flops_speedup}")
    reference = full_model(points)
    floor = reference.accuracy - max_accuracy_drop / 100 - 1e-12
    within = [p for p in points if p.accuracy >= floor]
    per_width = {}
    for width in sorted({p.width for p in points}, reverse=True):
        # ties in speed cannot happen; prefer the largest speed that keeps the budget
        per_width[str(width)] = _to_dict(_best([p for p in within if p.width == width], key=lambda p: p.speed))
    fastest = _best(within, key=lambda p: (p.flops_speedup, p.accuracy))
    cheap = [p for p in points if p.flops_speedup >= min_flops_speedup - 1e-12]
    most_accurate = _best(cheap, key=lambda p: (p.accuracy, p.flops_speedup))
    return {
        "full_model": asdict(reference),
        "max_accuracy_drop_points": max_accuracy_drop,
        "min_flops_speedup": min_flops_speedup,
        "per_width": per_width,
        "fewest_flops_within_accuracy_budget": _to_dict(fastest),
        "best_accuracy_within_flops_budget": _to_dict(most_accurate),
    }


def _to_dict(point: Optional[GridPoint]) -> Optional[Dict]:
    return None if point is None else asdict(point)


def operating_points(calibration: Dict) -> List[Dict]:
    """The distinct chosen (width, speed) pairs, for measuring them on another split."""
    chosen = [calibration["fewest_flops_within_accuracy_budget"], calibration["best_accuracy_within_flops_budget"],
              *calibration["per_width"].values()]
    seen, out = set(), []
    for point in chosen:
        if point is not None and (point["width"], point["speed"]) not in seen:
            seen.add((point["width"], point["speed"]))
            out.append({"width": point["width"], "speed": point["speed"]})
    return out


def markdown(calibration: Dict, test_points: Dict[tuple, GridPoint] | None = None) -> str:
    """The calibration as a Markdown table; test accuracy and speed-up beside dev when given."""
    ref = calibration["full_model"]
    lines = [f"Full model (width 1.0, speed 0): dev accuracy {100 * ref['accuracy']:.2f}. "
             f"Budget: at most {calibration['max_accuracy_drop_points']:g} points below it; "
             f"reverse: at least {calibration['min_flops_speedup']:g}x fewer FLOPs.", "",
             "| choice | width | speed | dev acc | dev FLOPs speed-up | test acc | test FLOPs speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    rows = [("fewest FLOPs within the accuracy budget", calibration["fewest_flops_within_accuracy_budget"]),
            ("best accuracy within the FLOPs budget", calibration["best_accuracy_within_flops_budget"])]
    rows += [(f"largest speed at width {w}", p) for w, p in calibration["per_width"].items()]
    for name, p in rows:
        if p is None:
            lines.append(f"| {name} | none | | | | | |")
            continue
        test = (test_points or {}).get((p["width"], p["speed"]))
        test_cells = f"{100 * test.accuracy:.2f} | {test.flops_speedup:.2f}x" if test else " | "
        lines.append(f"| {name} | {p['width']:g} | {p['speed']:g} | {100 * p['accuracy']:.2f} "
                     f"| {p['flops_speedup']:.2f}x | {test_cells} |")
    return "\n".join(lines) + "\n"


def run_calibration(config: CalibrateConfig, overwrite: bool = False, trust_pickle: bool = False) -> Dict:
    """``paddle-dynafast calibrate``: choose on dev, report on test; writes calibration.json and .md. An earlier
    calibration in the output directory is replaced only with ``overwrite`` (:mod:`paddle_dynafast.outputs`);
    ``trust_pickle`` reads pickled weights of an older version."""
    with outputs.claim(config.output_dir, outputs.CALIBRATE, [config.model_dir, config.data.data_dir], overwrite):
        return _calibrate(config, trust_pickle)


def _calibrate(config: CalibrateConfig, trust_pickle: bool) -> Dict:
    model = DynaFastModel.load(config.model_dir, trust_pickle=trust_pickle)
    dev_split = load_split(model, config.data, "dev", config.batch_size)
    dev = speed_grid(model, dev_split.loader, dev_split.gold, dev_split.tokens, model.widths, config.speeds)
    result = calibrate(dev, config.max_accuracy_drop, config.min_flops_speedup)
    result["dev_fingerprint"] = dev_split.fingerprint
    test_points = {}
    try:
        test = load_split(model, config.data, "test", config.batch_size)
    except DataError as error:  # no test split: dev only
        result["test"] = f"not measured: {error}"
    else:
        for point in operating_points(result):
            (p,) = speed_grid(model, test.loader, test.gold, test.tokens, [point["width"]], [point["speed"]])
            test_points[(p.width, p.speed)] = p
        result["test"] = [asdict(p) for p in test_points.values()]
    result["config"] = to_dict(config)
    out = Path(config.output_dir)
    artifacts.write_json(out / "calibration.json", result)
    artifacts.write_text(out / "calibration.md", "# Calibrated operating points\n\n" + markdown(result, test_points))
    return result
