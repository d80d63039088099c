"""The rows of every (lever, seed) measured, and the tables of ablation.md written from them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from paddle_dynafast import atomic

from .levers import Lever, combine


def finished_rows(output: Path, table: Dict[str, Lever]) -> List[Dict]:
    """Every (lever, seed) measured in ``output`` so far, whichever call measured it: by seed, then in the order of
    the lever table (a combination after its first lever)."""
    order = {name: i for i, name in enumerate(table)}
    rows = [json.loads(path.read_text()) for path in output.glob("seed-*/evaluation-*/row.json")]
    for row in rows:  # a lever's description as the table words it now (what it changes is in its directory names)
        if all(part in table for part in row["lever"].split("+")):
            row["what"] = combine(row["lever"], table).what
    return sorted(rows, key=lambda r: (r["seed"], order.get(r["lever"].split("+")[0], len(order)), r["lever"]))


def interval(d: Optional[Dict], sign: float = 1.0) -> str:
    """``+0.57 [-0.10, +1.20]`` in points (``sign`` -1 turns a difference into a drop)."""
    if not d:
        return ""
    lo, hi = sorted((sign * d["low"], sign * d["high"]))
    return f"{100 * sign * d['delta']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"


def drop_interval(p: Optional[Dict]) -> str:
    """The drop of a calibrated point measured on test, with its interval, in points."""
    if not p or p.get("delta") is None:
        return ""
    return interval({"delta": p["delta"], "low": p["delta_low"], "high": p["delta_high"]}, -1.0)


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
                   + " | ".join(interval(r["widths"][w].get("dev_vs_teacher")) for w in widths) + " | "
                   + " | ".join(interval(r["widths"][w].get("test_vs_teacher")) for w in narrow) + " |")
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
                cells.append(f"{where} | {100 * p['dev']['promised_drop']:.2f} | {drop_interval(test)} "
                             f"| {test['flops_speedup']:.2f}x | {held}")
            else:
                cells.append(f"{where} | {drop_interval(test)} | {test['flops_speedup']:.2f}x | {held}")
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
            cells = [(interval(v["paired"][k]) + f" (p {v['paired'][k]['mcnemar_p']:.2g})") if k in v["paired"] else ""
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


def write_report(output: Path, rows: List[Dict], data_dir: str, teacher: str, quick: bool) -> Path:
    """``ablation.json`` (the rows and what they were measured on) and ``ablation.md`` (the tables) in ``output``;
    returns the latter."""
    seeds = sorted({r["seed"] for r in rows})
    atomic.write_json(output / "ablation.json", {"data": data_dir, "teacher": teacher, "seeds": seeds, "quick": quick,
                                                 "rows": rows})
    atomic.write_text(output / "ablation.md", markdown(rows))
    return output / "ablation.md"
