"""Write docs/results.md (and docs/figures/) from the run directories of benchmarks/reproduce.py.

Every number comes from the JSON files the stages wrote; nothing is typed in.

    .venv/bin/python benchmarks/report.py --runs runs --output docs
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np

SPEEDS = (0.0, 0.1, 0.3, 0.5, 0.8)


def load(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.is_file() else None


def pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def grid(evaluation: dict, width: float, speed: float) -> Optional[dict]:
    return next((p for p in evaluation["points"] if p["width"] == width and abs(p["speed"] - speed) < 1e-9), None)


def teacher_section(run: Path, random: Optional[Path], reference: str) -> List[str]:
    teacher = load(run / "teacher" / "metrics.json")
    lines = ["| model | dev accuracy | test accuracy | training time (s) |", "| --- | --- | --- | --- |",
             f"| teacher (fine-tuned) | {pct(teacher['dev_accuracy'])} | {pct(teacher.get('test_accuracy'))} "
             f"| {teacher['train_seconds']:.0f} |"]
    if random is not None and (random / "metrics.json").is_file():
        r = load(random / "metrics.json")
        lines.append(f"| same architecture, random initialisation | {pct(r['dev_accuracy'])} "
                     f"| {pct(r.get('test_accuracy'))} | {r['train_seconds']:.0f} |")
    if reference:
        lines.append(f"\n{reference}")
    return lines


def ci(d: Optional[dict]) -> str:
    """``+0.57 [-0.10, +1.20]`` in points from a ``{delta, low, high}`` dict (fractions); empty when missing."""
    if not d:
        return ""
    return f"{100 * d['delta']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def width_section(run: Path) -> List[str]:
    report = load(run / "supernet" / "metrics.json")["widths"]
    teacher = report["teacher"]
    paired = any("dev_vs_teacher" in row for w, row in report.items() if w != "teacher")
    header = ["width", "heads / layer", "FFN neurons / layer", "parameters (without embeddings)",
              "mean FLOPs / sample (dev)", "dev accuracy"]
    header += ["Δ dev vs teacher [95 % CI]", "McNemar p (dev)", "test accuracy", "Δ test vs teacher [95 % CI]"] \
        if paired else ["Δ dev vs teacher", "test accuracy"]
    header.append("exported sub-model, dev")
    rows = [["teacher", "", "", f"{teacher['parameters']:,}", "", pct(teacher["dev_accuracy"])]
            + (["", "", pct(teacher.get("test_accuracy")), ""] if paired else ["", pct(teacher.get("test_accuracy"))])
            + [""]]
    for width, row in report.items():
        if width == "teacher":
            continue
        cells = [width, str(row["heads_per_layer"]), str(row["neurons_per_layer"]),
                 f"{row['parameters']:,} ({row['parameters_without_embeddings']:,})",
                 f"{row['dev_mean_flops'] / 1e6:.1f} M", pct(row["dev_accuracy"])]
        if paired:
            p = (row.get("dev_vs_teacher") or {}).get("mcnemar_p")
            cells += [ci(row.get("dev_vs_teacher")), "" if p is None else f"{p:.2g}", pct(row.get("test_accuracy")),
                      ci(row.get("test_vs_teacher"))]
        else:
            cells += [f"{100 * (row['dev_accuracy'] - teacher['dev_accuracy']):+.2f}", pct(row.get("test_accuracy"))]
        rows.append(cells + [pct(row.get("submodel_dev_accuracy", row["dev_accuracy"]))])
    return ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |",
            *("| " + " | ".join(cells) + " |" for cells in rows)]


def speed_section(evaluation: dict, widths: List[float]) -> List[str]:
    lines = ["| width | " + " | ".join(f"speed {s:g}" for s in SPEEDS) + " |",
             "| --- | " + " | ".join("---" for _ in SPEEDS) + " |"]
    for width in widths:
        cells = []
        for speed in SPEEDS:
            p = grid(evaluation, width, speed)
            cells.append("" if p is None else f"{pct(p['accuracy'])} / {p['flops_speedup']:.2f}x / {p['mean_exit_layer']:.2f}")
        lines.append(f"| {width:g} | " + " | ".join(cells) + " |")
    if any(p.get("delta") is not None for p in evaluation["points"]):
        lines += ["", "Difference to the full model (width 1.0, speed 0) on the same test sentences, in points, with its "
                  "paired-bootstrap 95 % interval and McNemar's p:", "",
                  "| width | " + " | ".join(f"speed {s:g}" for s in SPEEDS) + " |",
                  "| --- | " + " | ".join("---" for _ in SPEEDS) + " |"]
        for width in widths:
            cells = []
            for speed in SPEEDS:
                p = grid(evaluation, width, speed)
                cells.append("" if p is None or p.get("delta") is None else
                             f"{ci({'delta': p['delta'], 'low': p['delta_low'], 'high': p['delta_high']})} "
                             f"(p {p['mcnemar_p']:.2g})")
            lines.append(f"| {width:g} | " + " | ".join(cells) + " |")
    return lines


def patience_section(evaluation: dict) -> List[str]:
    """PABEE patience against the entropy exits at equal FLOPs (from evaluate's patience points)."""
    points = evaluation.get("patience_points")
    if not points:
        return []
    lines = ["| width | patience | accuracy / FLOPs speed-up | entropy point at least as cheap | patience − entropy "
             "[95 % CI] (McNemar p) |", "| --- | --- | --- | --- | --- |"]
    for p in points:
        match = ("none as cheap", "") if p["entropy_speed"] is None else (
            f"speed {p['entropy_speed']:g}: {pct(p['entropy_accuracy'])} / {p['entropy_flops_speedup']:.2f}x",
            f"{ci({'delta': p['vs_entropy'], 'low': p['vs_entropy_low'], 'high': p['vs_entropy_high']})} "
            f"(p {p['vs_entropy_p']:.2g})")
        lines.append(f"| {p['width']:g} | {p['patience']} | {pct(p['accuracy'])} / {p['flops_speedup']:.2f}x "
                     f"| {match[0]} | {match[1]} |")
    summary = [c for c in evaluation.get("patience_vs_entropy", {}).values() if c["compared"]]
    if summary:
        lines += ["", f"The entropy curve, interpolated at patience's FLOPs speed-ups, is at least as accurate at "
                  f"{sum(c['base_better_or_equal'] for c in summary)} of {sum(c['compared'] for c in summary)} "
                  f"patience points, by {np.mean([c['mean_gap_points'] for c in summary]):+.2f} points on average "
                  "(mean over widths)."]
    return lines


def most_accurate(points: List[dict], speedup: float) -> Optional[dict]:
    """The most accurate of the points with at least this FLOPs speed-up (on the reported split: an oracle, not a
    deployable choice)."""
    ok = [p for p in points if p["flops_speedup"] >= speedup]
    return max(ok, key=lambda p: (p["accuracy"], p["flops_speedup"])) if ok else None


def compare(base: dict, other: dict) -> dict:
    """How often ``base`` is at least as accurate as ``other``: at the same (width, speed), and at ``other``'s FLOPs
    speed-up interpolated along ``base``'s curve of the same width (the same speed exits at different layers for
    differently trained branches). Speeds 0 and 1 are left out: they do not depend on the branches' training."""
    same, traded, gaps = [], [], []
    for b in other["points"]:
        if not 0 < b["speed"] < 1:
            continue
        a = grid(base, b["width"], b["speed"])
        if a is not None:
            same.append(a["accuracy"] >= b["accuracy"])
        curve = sorted((p["flops_speedup"], p["accuracy"]) for p in base["points"] if p["width"] == b["width"])
        xs, ys = [c[0] for c in curve], [c[1] for c in curve]
        if xs and xs[0] <= b["flops_speedup"] <= xs[-1]:
            interpolated = float(np.interp(b["flops_speedup"], xs, ys))
            traded.append(interpolated >= b["accuracy"])
            gaps.append(interpolated - b["accuracy"])
    return {"same_speed": (sum(same), len(same)), "same_speedup": (sum(traded), len(traded)),
            "mean_gap_points": 100 * float(np.mean(gaps)) if gaps else float("nan")}


TRAINED_BY = {"distill": "self-distilled", "mix": "half KL, half labels", "labels": "trained on labels only"}


def trained_by(run: Path) -> str:
    """How the run's branches were trained (RUN/dynafast/stage.json; runs older than the setting self-distilled)."""
    stage = load(run / "dynafast" / "stage.json") or {}
    return TRAINED_BY[stage.get("config", {}).get("objective", "distill")]


def ablation_section(run: Path, widths: List[float]) -> List[str]:
    how = trained_by(run)
    variants = [(f"shared branches, {how} (default)", run / "evaluation" / "evaluation.json"),
                (f"one set per width, {how}", run / "evaluation-dynafast-per-width" / "evaluation.json"),
                ("shared, trained on labels only", run / "evaluation-dynafast-labels" / "evaluation.json")]
    found = [(name, load(path)) for name, path in variants if path.is_file()]
    lines = ["| width | speed | " + " | ".join(name for name, _ in found) + " |",
             "| --- | --- | " + " | ".join("---" for _ in found) + " |"]
    for width in widths:
        for speed in SPEEDS[1:]:
            cells = []
            for _, evaluation in found:
                p = grid(evaluation, width, speed)
                cells.append("" if p is None else f"{pct(p['accuracy'])} / {p['flops_speedup']:.2f}x")
            lines.append(f"| {width:g} | {speed:g} | " + " | ".join(cells) + " |")
    default = found[0][1]
    lines.append("")
    for name, evaluation in found[1:]:
        c = compare(default, evaluation)
        lines.append(f"Shared {how} branches against {name}: better or equal at {c['same_speed'][0]} of "
                     f"{c['same_speed'][1]} points at the same speed, at {c['same_speedup'][0]} of "
                     f"{c['same_speedup'][1]} at the same FLOPs speed-up, by {c['mean_gap_points']:+.2f} points on "
                     "average there.")
    return lines


def dataset_section(title: str, run: Path, figures: Path, random: Optional[Path] = None,
                    reference: str = "") -> List[str]:
    if not (run / "summary.json").is_file():
        out = [f"## {title}", "", f"The pipeline did not finish (`{run}/summary.json` is missing); its finished "
               "stages:", ""]
        if (run / "teacher" / "metrics.json").is_file():
            out += ["### Teacher", "", *teacher_section(run, random, reference), ""]
        if (run / "supernet" / "metrics.json").is_file():
            out += ["### Width (DynaBERT supernet)", "", *width_section(run), ""]
        return out
    evaluation = load(run / "evaluation" / "evaluation.json")
    widths = sorted({p["width"] for p in evaluation["points"]}, reverse=True)
    name = run.name
    shutil.copy(run / "evaluation" / "evaluation.png", figures / f"{name}-speed.png")
    chosen_by = next(p for p in (run / "calibration" / "calibration.md", run / "calibration" / "timed.md")
                     if p.is_file())
    calibration = chosen_by.read_text().split("\n", 2)[2]
    out = [f"## {title}", "", "### Teacher", "", *teacher_section(run, random, reference), "",
           "### Width (DynaBERT supernet)", "", *width_section(run), "",
           "### Depth at every width (FastBERT exits, test split)", "",
           "Each cell: accuracy / FLOPs speed-up against the full model / mean exit layer.", "",
           *speed_section(evaluation, widths), "", f"![accuracy against FLOPs speed-up](figures/{name}-speed.png)", "",
           "### Operating points chosen on dev (calibrate), measured on test", "", calibration]
    if evaluation.get("patience_points"):
        out += ["### PABEE patience against entropy at equal FLOPs (test)", "", *patience_section(evaluation), ""]
    if (run / "evaluation-dynafast-labels" / "evaluation.json").is_file():
        out += ["### Branch ablations (test; accuracy / FLOPs speed-up)", "", *ablation_section(run, widths), ""]
    levers = run.parent / f"{run.name}-ablation" / "ablation.md"
    if levers.is_file():
        out += ["### Accuracy levers (benchmarks/ablation.py, issue #13)", "", levers.read_text(), ""]
    if (run / "benchmark" / "bench.md").is_file():
        bench = load(run / "benchmark" / "bench.json")
        out += ["### Deployment benchmark (test split; benchmarks/compare.py)", "",
                f"{bench['threads']} threads for every runtime; each system alone in a fresh process, the processes "
                f"taking turns over {bench['rounds']} rounds (medians); every input shape seen once before timing; "
                f"latency at batch 1 over the first {bench['samples']} test texts, throughput at batch 32 over the "
                f"whole split; tokenising not timed. Machine: {bench['machine']['cpus']} cores, "
                f"{bench['machine']['processor']}; finished {bench['finished']}. Ratios against each reference: "
                "accuracy points, latency speed-up, throughput speed-up, throughput speed-up / FLOPs speed-up.", "",
                (run / "benchmark" / "bench.md").read_text(), ""]
    for timed in sorted(run.glob("timed-*/timed.md")):
        out += [f"### Operating points on measured time: {timed.parent.name} (calibrate --runtime)", "",
                timed.read_text().split("\n", 2)[2], ""]
    summary = load(run / "summary.json")
    out += [f"Stage times (s): {summary['stage_seconds']}.", ""]
    return out


def targets(runs: Path) -> List[str]:
    """Every numeric target of the issues, with the measured value."""
    run = runs / "sst2"
    lines = ["| target (issue) | measured | met |", "| --- | --- | --- |"]

    def row(text, value, ok):
        lines.append(f"| {text} | {value} | {'yes' if ok else '**no**'} |")

    teacher = load(run / "teacher" / "metrics.json")
    if teacher:
        row("MiniLM fine-tuned on SST-2: dev >= 85 (#2)", pct(teacher["dev_accuracy"]), teacher["dev_accuracy"] >= 0.85)
    random = load(runs / "sst2-random" / "metrics.json")
    if teacher and random:
        row("random initialisation clearly worse (#2)", f"{pct(random['dev_accuracy'])} dev",
            random["dev_accuracy"] < teacher["dev_accuracy"] - 0.03)
    supernet = load(run / "supernet" / "metrics.json")
    if supernet:
        w = supernet["widths"]
        t = w["teacher"]["dev_accuracy"]
        for width, points, issue in (("0.5", 1.0, "#3, #13"), ("0.25", 3.0, "#3"), ("0.25", 2.5, "#13")):
            drop = 100 * (t - w[width]["dev_accuracy"])
            interval = w[width].get("dev_vs_teacher")
            where = "" if not interval else f" (95 % CI of the difference {ci(interval)})"
            row(f"width {width} within {points:g} dev points of the teacher ({issue})", f"{drop:.2f} points below{where}",
                drop <= points)
        row("width-0.5 sub-model reloaded gives the supernet's dev accuracy (#3)",
            f"{pct(w['0.5']['submodel_dev_accuracy'])} vs {pct(w['0.5']['dev_accuracy'])}",
            w["0.5"]["submodel_dev_accuracy"] == w["0.5"]["dev_accuracy"])
    evaluation = load(run / "evaluation" / "evaluation.json")
    if evaluation:
        full = grid(evaluation, 1.0, 0.0)["accuracy"]
        for drop, speedup in ((0.5, 3.0), (1.5, 5.0)):
            p = most_accurate(evaluation["points"], speedup)
            ok = p is not None and p["accuracy"] >= full - drop / 100 - 1e-12
            row(f"<= {drop:g} points below the full model with >= {speedup:g}x fewer FLOPs, test (#4; best grid "
                "point on test itself)", "none" if p is None else
                f"width {p['width']:g} speed {p['speed']:g}: {100 * (p['accuracy'] - full):+.2f} points, "
                f"{p['flops_speedup']:.2f}x", ok)
    calibration = load(run / "calibration" / "calibration.json")
    if calibration and isinstance(calibration.get("test"), list):
        tested = {(p["width"], p["speed"]): p for p in calibration["test"]}
        budget = calibration["max_accuracy_drop_points"]
        confidence = calibration.get("confidence")
        for key, text, limit in (("best_accuracy_within_flops_budget",
                                  f">= {calibration['min_flops_speedup']:g}x fewer FLOPs at <= 0.5 test points below the "
                                  "full model, the point chosen on dev (#13)", 0.5),
                                 ("fewest_flops_within_accuracy_budget",
                                  f"calibrated point (budget {budget:g} points"
                                  + (f", confidence {confidence:g}" if confidence is not None else ", raw dev drop")
                                  + "): test drop within the budget (#13)", budget)):
            chosen = calibration.get(key)
            test = tested.get((chosen["width"], chosen["speed"])) if chosen else None
            if test is None or test.get("delta") is None:
                continue
            drop = -100 * test["delta"]
            promised = "" if chosen.get("promised_drop") is None else f", promised {100 * chosen['promised_drop']:.2f}"
            row(text, f"width {chosen['width']:g} speed {chosen['speed']:g}: {drop:.2f} points below "
                f"[{-100 * test['delta_high']:.2f}, {-100 * test['delta_low']:.2f}] at {test['flops_speedup']:.2f}x"
                + promised, drop <= limit + 1e-9)
    timed = load(run / "calibration" / "timed.json")
    if timed and isinstance(timed.get("test"), dict):
        chosen = timed.get("fastest_within_accuracy_budget")
        test = next((p for p in timed["test"]["points"] if p["choice"] == "fastest_within_accuracy_budget"), None)
        if chosen and test and test.get("delta") is not None:
            budget, drop = timed["max_accuracy_drop_points"], -100 * test["delta"]
            row(f"calibrated point on {timed['runtime']} (budget {budget:g} points, confidence "
                f"{timed['confidence']}): test drop within the budget (#13, #22)",
                f"width {chosen['width']:g} speed {chosen['speed']:g}: {drop:.2f} points below "
                f"[{-100 * test['delta_high']:.2f}, {-100 * test['delta_low']:.2f}], "
                f"{test['throughput_speedup']:.2f}x throughput, {test['latency_speedup']:.2f}x latency, promised "
                f"{100 * chosen['promised_drop']:.2f}", drop <= budget + 1e-9)
    labels = load(run / "evaluation-dynafast-labels" / "evaluation.json")
    if evaluation and labels:
        c = compare(evaluation, labels)
        row(f"{trained_by(run)} branches beat label-trained ones at the same speed (#4)",
            "better or equal at {} of {} (width, speed) points".format(*c["same_speed"]),
            c["same_speed"][0] > c["same_speed"][1] / 2)
        row("... and at the same FLOPs speed-up (interpolated along each width's curve) (#4)",
            "better or equal at {} of {} points".format(*c["same_speedup"]),
            c["same_speedup"][0] > c["same_speedup"][1] / 2)
    bench = load(run / "benchmark" / "bench.json")
    if bench and len(bench.get("references", [])) == 2:
        lines.extend(deployment_targets(bench))
    return lines


def deployment_targets(bench: dict) -> List[str]:
    """Issue #16's targets from benchmarks/compare.py's bench.json."""
    paddle, onnx = bench["references"]
    results = {r["name"]: r for r in bench["results"]}
    out = []

    def row(text, value, ok):
        out.append(f"| {text} | {value} | {'yes' if ok else '**no**'} |")

    adaptive = [r for r in bench["results"] if r["name"].startswith("(d)")
                and r["against"][paddle]["accuracy_points"] >= -0.5]
    if adaptive:
        best = max(adaptive, key=lambda r: r["against"][paddle]["throughput_speedup"])
        p, o = best["against"][paddle], best["against"][onnx]
        row(f"<= 0.5 test points below the full fp32 model: >= 4x throughput (batch 32) and >= 3x lower latency "
            f"(batch 1) than {paddle} (#16)", f"{best['name']}: {p['accuracy_points']:+.2f} points, "
            f"{p['throughput_speedup']:.2f}x, {p['latency_speedup']:.2f}x",
            p["throughput_speedup"] >= 4 and p["latency_speedup"] >= 3)
        row(f"... >= 3x throughput and >= 2x lower latency than {onnx} (#16)",
            f"{o['throughput_speedup']:.2f}x, {o['latency_speedup']:.2f}x",
            o["throughput_speedup"] >= 3 and o["latency_speedup"] >= 2)
    for r in bench["results"]:
        if r["name"].startswith("(d)") and r["name"].endswith("ONNX Runtime fp32"):
            q = r["against"][onnx]
            row(f"{r['name']}: measured / FLOPs speed-up >= 0.8 at batch 32 on the default runtime (#16)",
                f"{q['measured_per_flops']:.2f}", q["measured_per_flops"] >= 0.8)
    int8, fp32 = results.get("full model, ONNX Runtime int8"), results.get(onnx)
    if int8 and fp32:
        q = int8["against"][onnx]
        row("int8 at width 1.0, speed 0: <= 0.3 points below fp32 and >= 1.8x its throughput, same runtime (#16)",
            f"{q['accuracy_points']:+.2f} points, {q['throughput_speedup']:.2f}x",
            q["accuracy_points"] >= -0.3 and q["throughput_speedup"] >= 1.8)
    return out


def throughput_section(runs: Path) -> List[str]:
    result = load(runs / "distributed" / "throughput.json")
    if result is None:
        return []
    lines = ["## Data-parallel finetune throughput (SST-2, MiniLM, global batch 32, max 64 tokens)", "",
             "| processes | threads each | steps | training seconds | samples / s |", "| --- | --- | --- | --- | --- |"]
    for name, r in result.items():
        lines.append(f"| {name} | {r['threads_per_process']} | {r['steps']} | {r['train_seconds']} "
                     f"| {r['samples_per_second']} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--output", default="docs")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.output)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    log = load(runs / "reproduce.json") or {}
    machine = log.get("machine", {})
    timed = {k: v["seconds"] for k, v in log.items() if isinstance(v, dict) and "seconds" in v}
    total = sum(timed.values())
    steps = ", ".join(f"{k} {s / 60:.0f} min" for k, s in timed.items())
    lines = ["# Results", "",
             f"Written by `make reproduce` (benchmarks/reproduce.py, then benchmarks/report.py) on "
             f"{machine.get('cpus', '?')} CPU cores ({machine.get('processor', '?')}), Python "
             f"{machine.get('python', '?')}, paddlepaddle {machine.get('paddlepaddle', '?')}, no GPU; the whole run took "
             f"{total / 3600:.1f} h ({steps}).",
             "FLOPs are analytic (2 x multiply-accumulates of every matrix product, per sample from its real token "
             "count, branches included); times are wall-clock on that machine, medians of interleaved runs.", "",
             "## Targets", "", *targets(runs), ""]
    lines += dataset_section("SST-2 (all-MiniLM-L6-v2, max 64 tokens)", runs / "sst2", figures, runs / "sst2-random",
                             "PyTorch + transformers on the same model, data and settings (2 threads): dev 87.8 / test "
                             "88.6 in 789 s; random initialisation dev 77.2 / test 80.0 (from the project brief).")
    lines += throughput_section(runs)
    lines += dataset_section("TREC-6 (all-MiniLM-L6-v2, 6 classes, max 32 tokens; dev = 10 % of train)",
                             runs / "trec6", figures)
    lines += dataset_section("douban_book_review (random initialisation, character vocabulary, 6 layers x 256, "
                             "max 128 tokens, the first 8000 examples of each split)", runs / "douban", figures)
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"-> {out / 'results.md'}")


if __name__ == "__main__":
    main()
