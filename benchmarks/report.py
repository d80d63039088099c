"""Write docs/results.md (and docs/figures/) whole, from the run directories that `make reproduce` makes.

Every number comes from the files the runs wrote (JSON, and the Markdown tables the commands wrote beside it);
the only numbers typed in here are figures quoted from elsewhere (:data:`QUOTED`), each with its source. A section
whose run is missing is one line naming the run and the command that makes it. Nothing is written into the runs.

    .venv/bin/python benchmarks/report.py --runs runs --output docs
    .venv/bin/python benchmarks/report.py --runs runs --output docs --readme README.md   # also README's headline

``--readme`` rewrites the headline table of README.md (between its ``<!-- headline -->`` and ``<!-- /headline -->``
lines) from the same runs; ``--check-readme README.md`` instead lists every number of that table that the
written results.md does not contain (exit code 1 if any).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from paddle_dynafast.runtime.promise import Promise
from paddle_dynafast.stats import per_layer_report

SPEEDS = (0.0, 0.1, 0.3, 0.5, 0.8)
"""The speeds of the depth tables (evaluate measures more)."""

HEADLINE_START, HEADLINE_END = "<!-- headline -->", "<!-- /headline -->"
"""The lines around README.md's headline table."""

QUOTED = {
    "sst2": "PyTorch + transformers on the same model, data and settings (all-MiniLM-L6-v2, 3 epochs, batch 32, "
            "lr 5e-5, max 64 tokens, 2 threads): dev 87.8 / test 88.6 in 789 s of training; the same architecture "
            "from random initialisation dev 77.2 / test 80.0. Quoted from the project brief, not measured by these "
            "runs.",
}
"""Figures measured elsewhere, by data set, with their source: the only numbers not read from a run."""


class Dataset(NamedTuple):
    """A data set's pipeline run and what else `make reproduce` measures on it (a NamedTuple: the tests load this
    script by path, outside sys.modules, where a dataclass cannot be made)."""

    name: str
    """The run directory's name under --runs (and of its figure)."""
    title: str
    reproduce: str
    """How the pipeline run is made."""
    extras: Tuple[str, ...] = ()
    """What else is expected beside it: ``random``, ``branch-ablations``, ``benchmark``, ``timed``."""


DEMO = Dataset("demo", "The demo (`make demo`: SST-2, all-MiniLM-L6-v2, a slice of each split, one epoch per stage)",
               "`make demo` (`paddle-dynafast pipeline --model MINILM --data-dir ../shared/data/sst2 --max-seq-len 64 "
               "--quick --output runs/demo`)")
"""The quick run of `make demo`: the headline's source while the full SST-2 run has no timing."""

DATASETS = (
    Dataset("sst2", "SST-2 (all-MiniLM-L6-v2, max 64 tokens)",
            "`make reproduce`, step `sst2` (`paddle-dynafast pipeline --model MINILM --data-dir ../shared/data/sst2 "
            "--max-seq-len 64 --output runs/sst2`)", ("random", "branch-ablations", "benchmark", "timed")),
    Dataset("trec6", "TREC-6 (all-MiniLM-L6-v2, 6 classes, max 32 tokens; dev = a seeded 10 % of train)",
            "`make reproduce`, step `trec6` (`paddle-dynafast pipeline --model MINILM --data-dir ../shared/data/trec6 "
            "--max-seq-len 32 --int8 --output runs/trec6`)"),
    Dataset("trec6-holdout", "TREC-6 with 500 more training texts held out to calibrate on (dev + holdout = 1045 "
                             "calibration texts)",
            "`make reproduce`, step `trec6-holdout` (`paddle-dynafast pipeline --model MINILM --data-dir "
            "../shared/data/trec6 --max-seq-len 32 --int8 --holdout 500 --output runs/trec6-holdout`)"),
    Dataset("douban", "douban_book_review (random initialisation, character vocabulary, 6 layers x 256, max 128 "
                      "tokens, the first 8000 examples of each split)",
            "`make reproduce`, step `douban` (benchmarks/reproduce.py gives its settings)"),
)

EXTRAS = {
    "random": "`make reproduce`, step `sst2-random` (the teacher's architecture from random weights)",
    "branch-ablations": "`make reproduce`, step `sst2-ablations` (branches trained on labels only; one set per "
                        "width), into `RUN/evaluation-dynafast-labels` and `RUN/evaluation-dynafast-per-width`",
    "benchmark": "`make reproduce`, step `sst2-benchmark` (`benchmarks/compare.py --run runs/sst2 --data-dir "
                 "../shared/data/sst2`), into `RUN/benchmark/bench.json`",
    "timed": "`make reproduce`, step `sst2-timed-int8` (`paddle-dynafast calibrate --runtime onnxruntime "
             "--precision int8 ...`) into `RUN/timed-int8`, or a pipeline run with `--int8`",
}


# ----------------------------------------------------------------------------- reading and formatting


def load(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def ci(d: Optional[dict]) -> str:
    """``+0.57 [-0.10, +1.20]`` in points from a ``{delta, low, high}`` dict (fractions); empty when missing."""
    if not d:
        return ""
    return f"{100 * d['delta']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def missing(what: str, how: str) -> str:
    """The one line that stands for a section whose run is absent."""
    return f"*Not in these runs: {what}. Made by {how}.*"


def body(markdown_file: Path) -> str:
    """A Markdown file a command wrote, without its title line."""
    text = markdown_file.read_text(encoding="utf-8")
    return text.split("\n", 2)[2] if text.startswith("# ") else text


def grid(evaluation: dict, width: float, speed: float) -> Optional[dict]:
    return next((p for p in evaluation["points"] if p["width"] == width and abs(p["speed"] - speed) < 1e-9), None)


def seconds(stage_seconds: Dict[str, float]) -> str:
    return ", ".join(f"{name} {s:.0f} s" for name, s in stage_seconds.items()) + \
        f" (total {sum(stage_seconds.values()) / 60:.0f} min)"


# ----------------------------------------------------------------------------- a data set's sections


def teacher_section(run: Path, random: Optional[Path], quoted: str) -> List[str]:
    teacher = load(run / "teacher" / "metrics.json")
    lines = ["| model | dev accuracy | test accuracy | training time (s) |", "| --- | --- | --- | --- |",
             f"| teacher (fine-tuned) | {pct(teacher['dev_accuracy'])} | {pct(teacher.get('test_accuracy'))} "
             f"| {teacher['train_seconds']:.0f} |"]
    r = None if random is None else load(random / "metrics.json")
    if r is not None:
        lines.append(f"| same architecture, random initialisation | {pct(r['dev_accuracy'])} "
                     f"| {pct(r.get('test_accuracy'))} | {r['train_seconds']:.0f} |")
    if random is not None and r is None:
        lines += ["", missing(f"`{random}/metrics.json`", EXTRAS["random"])]
    if quoted:
        lines += ["", quoted]
    return lines


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


def classifier_section(probs_file: Path) -> List[str]:
    """Every classifier (one per layer) at every width on the evaluated split: accuracy and agreement with the final
    classifier of its width, from ``layer_probs.npz``."""
    with np.load(str(probs_file)) as f:
        widths, gold = [float(w) for w in f["widths"]], f["gold"]
        reports = {w: per_layer_report(f[f"width_{w}"], gold) for w in widths}
    layers = len(next(iter(reports.values()))["agreement"])
    lines = ["Each classifier alone (every text through it, no exit): accuracy / agreement with the final "
             "classifier of its width (the share of texts given the same label), in %.", "",
             "| width | " + " | ".join(f"layer {i}" for i in range(1, layers + 1)) + " |",
             "| --- | " + " | ".join("---" for _ in range(layers)) + " |"]
    for width, report in reports.items():
        lines.append(f"| {width:g} | " + " | ".join(f"{pct(a)} / {pct(g)}" for a, g in zip(
            report.get("accuracy", [None] * layers), report["agreement"])) + " |")
    return lines


def speed_section(evaluation: dict, widths: List[float]) -> List[str]:
    lines = ["Each cell: accuracy / FLOPs speed-up against the full model / mean exit layer.", "",
             "| width | " + " | ".join(f"speed {s:g}" for s in SPEEDS) + " |",
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


def drop(split: Optional[dict]) -> str:
    """``0.34 [-0.11, 0.80]`` points from a promise's split (drops are already in points)."""
    if not split:
        return "not measured"
    interval = "" if split.get("drop_low") is None else f" [{split['drop_low']:.2f}, {split['drop_high']:.2f}]"
    return f"{split['drop']:.2f}{interval}"


def promise_section(run: Path, summary: dict) -> List[str]:
    """The point the pipeline shipped in RUN/export, what its calibration promised, and the pipeline's own timing."""
    raw = summary.get("promise")
    if raw is None:
        return [missing(f"a promise in `{run}/summary.json` (written by pipelines since calibration against the "
                        "teacher)", "a pipeline run of the current code")]
    p = Promise.from_json(raw)
    lines = [f"`{run}/export` ships width {p.width:g} at speed {p.speed:g}. Its promise (`export.json`, "
             f"`summary.json`): {p.summary()}.", "",
             f"- measured on: {p.measured_on}" + ("" if p.reference_runtime is None
                                                   else f"; the {p.reference} timed on {p.reference_runtime}"),
             f"- dev: accuracy {pct(p.dev.accuracy)} against the {p.reference}'s {pct(p.dev.reference_accuracy)}, "
             f"drop {drop(raw['dev'])} points (paired-bootstrap 95 % interval)",
             "- test: " + ("not measured" if p.test is None else
                           f"accuracy {pct(p.test.accuracy)} against {pct(p.test.reference_accuracy)}, drop "
                           f"{drop(raw['test'])} points; the budget "
                           + ("held" if p.test.drop <= p.max_accuracy_drop + 1e-9 else "did **not** hold")),
             "- FLOPs speed-up (dev): " + ("n/a" if p.flops_speedup is None else f"{p.flops_speedup:.2f}x")]
    if p.throughput_speedup is not None:
        lines.append(f"- measured on dev against the {p.reference}: {p.throughput_speedup:.2f}x throughput at "
                     f"batch 32, {p.latency_speedup:.2f}x lower latency at batch 1")
    latency = summary.get("latency")
    if latency and latency.get("table"):
        lines += ["", f"The pipeline's own timing of the two exports ({latency['split']} split; the first is the "
                  "reference of the ratios):", "", latency["table"].rstrip()]
    return lines


def bench_section(bench_file: Path) -> List[str]:
    bench = load(bench_file)
    return [f"`benchmarks/compare.py` ({bench_file.parent}): {bench['threads']} threads for every runtime; each "
            f"system alone in a fresh process, the processes taking turns over {bench['rounds']} rounds (medians); "
            f"every input shape seen once before timing; latency at batch 1 over the first {bench['samples']} "
            f"{bench.get('split', 'test')} texts, throughput at batch 32 over the whole split; tokenising not timed. "
            f"Machine: {bench['machine']['cpus']} cores, {bench['machine']['processor']}; finished "
            f"{bench['finished']}. Ratios against each reference: accuracy points, latency speed-up, throughput "
            "speed-up, throughput speed-up / FLOPs speed-up.", "", (bench_file.parent / "bench.md").read_text().rstrip()]


def dataset_section(dataset: Dataset, runs: Path, figures: Path) -> List[str]:
    run = runs / dataset.name
    quoted = QUOTED.get(dataset.name, "")
    random = runs / f"{dataset.name}-random" if "random" in dataset.extras else None
    out = [f"## {dataset.title}", ""]
    if not (run / "summary.json").is_file():
        finished = [(name, path) for name, path in (("Teacher", run / "teacher" / "metrics.json"),
                                                     ("Width (DynaBERT supernet)", run / "supernet" / "metrics.json"))
                    if path.is_file()]
        if not finished:
            return out + [missing(f"`{run}`", dataset.reproduce), ""]
        out += [f"The pipeline has not finished (`{run}/summary.json` is missing; {dataset.reproduce} finishes "
                "it); its finished stages:", ""]
        for name, _ in finished:
            out += [f"### {name}", "", *(teacher_section(run, random, quoted) if name == "Teacher"
                                         else width_section(run)), ""]
        return out
    summary = load(run / "summary.json")
    evaluation = load(run / "evaluation" / "evaluation.json")
    widths = sorted({p["width"] for p in evaluation["points"]}, reverse=True)
    figure = figures / f"{dataset.name}-speed.png"
    shutil.copyfile(run / "evaluation" / "evaluation.png", figure)
    out += ["### Teacher", "", *teacher_section(run, random, quoted), "",
            "### Width (DynaBERT supernet)", "", *width_section(run), "",
            "### Depth at every width (FastBERT exits, test split)", "", *speed_section(evaluation, widths), "",
            f"![accuracy against FLOPs speed-up, test split](figures/{figure.name})", ""]
    probs_file = run / "evaluation" / "layer_probs.npz"
    if probs_file.is_file():
        out += ["### Every branch against the final classifier (test split)", "", *classifier_section(probs_file), ""]
    out += ["### The shipped export and its promise", "", *promise_section(run, summary), ""]
    calibration = next((p for p in (run / "calibration" / "calibration.md", run / "calibration" / "timed.md")
                        if p.is_file()), None)
    out += ["### Operating points chosen on dev (calibrate), measured on test", "",
            body(calibration).rstrip() if calibration else missing(f"`{run}/calibration`", dataset.reproduce), ""]
    resplit = run / "resplit" / "resplit.md"
    if resplit.is_file():
        out += ["### The promise on re-splits of dev and test (benchmarks/resplit_timed.py)", "",
                body(resplit).rstrip(), ""]
    if evaluation.get("patience_points"):
        out += ["### PABEE patience against entropy at equal FLOPs (test)", "", *patience_section(evaluation), ""]
    if (run / "evaluation-dynafast-labels" / "evaluation.json").is_file() or \
            (run / "evaluation-dynafast-per-width" / "evaluation.json").is_file():
        out += ["### Branch ablations (test; accuracy / FLOPs speed-up)", "", *ablation_section(run, widths), ""]
    elif "branch-ablations" in dataset.extras:
        out += ["### Branch ablations", "", missing("the branch ablations", EXTRAS["branch-ablations"]), ""]
    benches = sorted(run.glob("benchmark*/bench.json"))
    for bench_file in benches:
        out += [f"### Deployment benchmark: {bench_file.parent.name} (test split)", "", *bench_section(bench_file), ""]
    if not benches and "benchmark" in dataset.extras:
        out += ["### Deployment benchmark", "", missing("the deployment benchmark", EXTRAS["benchmark"]), ""]
    timed = sorted(run.glob("timed-*/timed.md"))
    for path in timed:
        out += [f"### Operating points on measured time: {path.parent.name} (calibrate --runtime)", "",
                body(path).rstrip(), ""]
    if not timed and "timed" in dataset.extras and not (run / "calibration" / "timed.json").is_file():
        out += ["### Operating points on measured time", "",
                missing("a calibration on measured time", EXTRAS["timed"]), ""]
    out += [f"Stage times of the pipeline run: {seconds(summary['stage_seconds'])}.", ""]
    return out


# ----------------------------------------------------------------------------- the other sections


def levers_section(runs: Path, dataset: Dataset) -> List[str]:
    """The accuracy levers of benchmarks/ablation.py on one data set (RUN-ablation/ablation.md)."""
    directory = runs / f"{dataset.name}-ablation"
    title = dataset.title.split(" (")[0]
    out = [f"## Accuracy levers: {title}", ""]
    if not (directory / "ablation.md").is_file():
        return out + [missing(f"`{directory}/ablation.md`",
                              f"`make reproduce` with `--only {dataset.name}-ablation report` (benchmarks/ablation.py, "
                              "three seeds; hours)"), ""]
    meta = load(directory / "ablation.json") or {}
    rows = meta.get("rows", [])
    seeds = ", ".join(str(s) for s in meta.get("seeds", sorted({r["seed"] for r in rows})))
    out += [f"`benchmarks/ablation.py --teacher {meta.get('teacher', '?')} --data {meta.get('data', '?')} --output "
            f"{directory}` and its `--report`, seeds {seeds}" + (" (`--quick`: a check, not a measurement)"
                                                               if meta.get("quick") else "")
            + ". Training times are wall-clock on the machine of each call; calls run side by side share its cores.",
            ""]
    text = (directory / "ablation.md").read_text(encoding="utf-8")
    out += [re.sub(r"^#### ", "### ", text, flags=re.M).rstrip(), ""]
    return out


def int8_section(runs: Path) -> List[str]:
    """The int8 levers of benchmarks/int8_levers.py (RUNS/int8-levers/*.md, each written whole by it)."""
    out = ["## int8 levers (SST-2)", ""]
    tables = sorted((runs / "int8-levers").glob("*.md"))
    if not tables:
        return out + [missing(f"`{runs}/int8-levers/*.md`",
                              "`make reproduce`, step `int8-levers` (`benchmarks/int8_levers.py --export "
                              "runs/sst2/export-full --data-dir ../shared/data/sst2`)"), ""]
    for table in tables:
        out += [re.sub(r"^# ", "### ", table.read_text(encoding="utf-8"), flags=re.M).rstrip(), ""]
    return out


def throughput_section(runs: Path) -> List[str]:
    out = ["## Data-parallel finetune throughput (SST-2, MiniLM, global batch 32, max 64 tokens)", ""]
    result = load(runs / "distributed" / "throughput.json")
    if result is None:
        return out + [missing(f"`{runs}/distributed/throughput.json`",
                              "`make reproduce`, step `distributed-throughput`"), ""]
    out += ["| processes | threads each | steps | training seconds | samples / s |", "| --- | --- | --- | --- | --- |"]
    for name, r in result.items():
        out.append(f"| {name} | {r['threads_per_process']} | {r['steps']} | {r['train_seconds']} "
                   f"| {r['samples_per_second']} |")
    return out + [""]


def served_rows(bench: dict, promise: Optional[dict]) -> List[dict]:
    """The shipped export's rows of a benchmark on the runtime and precision its promise was measured on (all its
    rows in that precision when the promise is about dygraph, or there is no promise)."""
    shipped = [r for r in bench["results"] if "(shipped" in r["name"]]  # "(shipped)", or "(shipped, ...)"
    measured_on = (promise or {}).get("measured_on", "dygraph fp32")
    runtime, _, precision = measured_on.partition(" ")
    label = {"onnxruntime": "ONNX Runtime", "paddle-inference": "Paddle Inference"}.get(runtime, "")
    rows = [r for r in shipped if r["name"].endswith(precision) and label in r["name"]]
    return rows or shipped


def headline(runs: Path) -> List[str]:
    """The README's headline table: SST-2's references, int8 and the shipped export, from the deployment benchmark
    of the full SST-2 run; else that run's own timing at its end; else the demo's (``runs/demo``); and where it was
    measured."""
    run = runs / "sst2"
    summary = load(run / "summary.json")
    bench = load(run / "benchmark" / "bench.json")
    demo = load(runs / DEMO.name / "summary.json")
    if bench is not None and bench.get("references"):
        promise = (summary or {}).get("promise")
        by_name = {r["name"]: r for r in bench["results"]}
        reference = bench["references"][0]
        picked = [by_name[n] for n in bench["references"]]
        picked += [by_name[n] for n in ("full model, ONNX Runtime int8",) if n in by_name]
        picked += [r for r in served_rows(bench, promise) if r not in picked]
        rows = [(r["name"], r, r["against"][reference]) for r in picked]
        where = (f"SST-2 test (1821 texts), measured by `benchmarks/compare.py` ({bench['threads']} threads, each "
                 f"system alone in its process, {bench['rounds']} interleaved rounds, medians) on "
                 f"{bench['machine']['cpus']} cores of {bench['machine']['processor']}, finished {bench['finished']}")
    elif (summary or {}).get("latency") or (demo or {}).get("latency"):
        source, timed = (run, summary) if (summary or {}).get("latency") else (runs / DEMO.name, demo)
        promise = timed.get("promise")
        rows = [(f"{r['name']} ({r['note'].split(', ')[1]})", r, r["ratios"]) for r in timed["latency"]["results"]]
        data = timed.get("config", {}).get("data", {})
        what = "the full SST-2 run" if source == run else (
            f"the demo's quick run (`make demo`: the first {data.get('max_examples')} training sentences and "
            f"{data.get('max_eval_examples')} of dev and test, one epoch per stage; far from a full run's accuracy)")
        where = (f"SST-2 {timed['latency']['split']} split of {what}, timed by the pipeline itself at its end "
                 f"(`{source}/summary.json`: the exported teacher against the shipped export, interleaved, 2 rounds, "
                 "medians; not a benchmark of every runtime). The run does not record whether other work shared its "
                 "cores: its times are indicative, its ratios measured side by side")
    else:
        return [missing(f"`{run}/benchmark/bench.json`, `{run}/summary.json` or `{runs / DEMO.name}/summary.json`",
                        f"{EXTRAS['benchmark']}; or {DEMO.reproduce}")]
    first = rows[0][1]["accuracy"]
    lines = [f"| system | test acc | FLOPs speed-up | latency b=1 | throughput b=32 | vs {rows[0][0]}: latency, "
             "throughput |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r, q in rows:
        gap = "" if abs(r["accuracy"] - first) < 1e-12 else f" ({100 * (r['accuracy'] - first):+.2f})"
        lines.append(f"| {name} | {pct(r['accuracy'])}{gap} | {q['flops_speedup']:.2f}x "
                     f"| {r['latency_ms_median']:.2f} ms | {r['throughput']:.0f}/s "
                     f"| {q['latency_speedup']:.2f}x, {q['throughput_speedup']:.2f}x |")
    lines += ["", where + "."]
    if promise is not None:
        lines += ["", f"The shipped export's promise: {Promise.from_json(promise).summary()}; test drop "
                      f"{drop(promise.get('test'))} points."]
    return lines


# ----------------------------------------------------------------------------- targets


def targets(runs: Path) -> List[str]:
    """Every numeric target the project set itself, by what it is about, with the measured value."""
    run = runs / "sst2"
    lines = ["| about | target (SST-2 unless named) | measured | met |", "| --- | --- | --- | --- |"]

    def row(about, text, value, ok):
        lines.append(f"| {about} | {text} | {value} | {'yes' if ok else '**no**'} |")

    teacher = load(run / "teacher" / "metrics.json")
    if teacher:
        row("teacher", "MiniLM fine-tuned: dev >= 85", pct(teacher["dev_accuracy"]), teacher["dev_accuracy"] >= 0.85)
    random = load(runs / "sst2-random" / "metrics.json")
    if teacher and random:
        row("teacher", "random initialisation clearly worse (3 dev points or more)",
            f"{pct(random['dev_accuracy'])} dev", random["dev_accuracy"] < teacher["dev_accuracy"] - 0.03)
    supernet = load(run / "supernet" / "metrics.json")
    if supernet:
        w = supernet["widths"]
        t = w["teacher"]["dev_accuracy"]
        for width, points, about in (("0.5", 1.0, "width"), ("0.25", 3.0, "width"), ("0.25", 2.5, "accuracy")):
            if width not in w:
                continue
            gap = 100 * (t - w[width]["dev_accuracy"])
            interval = w[width].get("dev_vs_teacher")
            where = "" if not interval else f" (95 % CI of the difference {ci(interval)})"
            row(about, f"width {width} within {points:g} dev points of the teacher", f"{gap:.2f} points below{where}",
                gap <= points)
        if "submodel_dev_accuracy" in w.get("0.5", {}):
            row("width", "the width-0.5 sub-model reloaded gives the supernet's dev accuracy",
                f"{pct(w['0.5']['submodel_dev_accuracy'])} vs {pct(w['0.5']['dev_accuracy'])}",
                w["0.5"]["submodel_dev_accuracy"] == w["0.5"]["dev_accuracy"])
    evaluation = load(run / "evaluation" / "evaluation.json")
    full_point = None if evaluation is None else grid(evaluation, 1.0, 0.0)
    if full_point:
        full = full_point["accuracy"]
        for most, speedup in ((0.5, 3.0), (1.5, 5.0)):
            p = most_accurate(evaluation["points"], speedup)
            ok = p is not None and p["accuracy"] >= full - most / 100 - 1e-12
            row("depth", f"<= {most:g} test points below the full model with >= {speedup:g}x fewer FLOPs (the best "
                "grid point on test itself)", "none" if p is None else
                f"width {p['width']:g} speed {p['speed']:g}: {100 * (p['accuracy'] - full):+.2f} points, "
                f"{p['flops_speedup']:.2f}x", ok)
    calibration = load(run / "calibration" / "calibration.json")
    if calibration and isinstance(calibration.get("test"), list):
        tested = {(p["width"], p["speed"]): p for p in calibration["test"]}
        budget = calibration["max_accuracy_drop_points"]
        confidence = calibration.get("confidence")
        against = "the teacher" if calibration.get("teacher") else "the full model"
        for key, text, limit in (("best_accuracy_within_flops_budget",
                                  f">= {calibration['min_flops_speedup']:g}x fewer FLOPs at <= 0.5 test points below "
                                  f"{against}, the point chosen on dev", 0.5),
                                 ("fewest_flops_within_accuracy_budget",
                                  f"the calibrated point (budget {budget:g} points"
                                  + (f", confidence {confidence:g}" if confidence is not None else ", raw dev drop")
                                  + "): test drop within the budget", budget)):
            chosen = calibration.get(key)
            test = tested.get((chosen["width"], chosen["speed"])) if chosen else None
            if test is None or test.get("delta") is None:
                continue
            gap = -100 * test["delta"]
            promised = "" if chosen.get("promised_drop") is None else f", promised {100 * chosen['promised_drop']:.2f}"
            row("accuracy", text, f"width {chosen['width']:g} speed {chosen['speed']:g}: {gap:.2f} points below "
                f"[{-100 * test['delta_high']:.2f}, {-100 * test['delta_low']:.2f}] at {test['flops_speedup']:.2f}x"
                + promised, gap <= limit + 1e-9)
    timed = load(run / "calibration" / "timed.json")
    if timed and isinstance(timed.get("test"), dict):
        chosen = timed.get("fastest_within_accuracy_budget")
        test = next((p for p in timed["test"]["points"] if p["choice"] == "fastest_within_accuracy_budget"), None)
        if chosen and test and test.get("delta") is not None:
            budget, gap = timed["max_accuracy_drop_points"], -100 * test["delta"]
            row("certified speed", f"the point calibrated on {timed['runtime']} (budget {budget:g} points, "
                f"confidence {timed['confidence']}): test drop within the budget",
                f"width {chosen['width']:g} speed {chosen['speed']:g}: {gap:.2f} points below "
                f"[{-100 * test['delta_high']:.2f}, {-100 * test['delta_low']:.2f}], "
                f"{test['throughput_speedup']:.2f}x throughput, {test['latency_speedup']:.2f}x latency, promised "
                f"{100 * chosen['promised_drop']:.2f}", gap <= budget + 1e-9)
    labels = load(run / "evaluation-dynafast-labels" / "evaluation.json")
    if evaluation and labels:
        c = compare(evaluation, labels)
        row("depth", f"{trained_by(run)} branches beat label-trained ones at the same speed",
            "better or equal at {} of {} (width, speed) points".format(*c["same_speed"]),
            c["same_speed"][0] > c["same_speed"][1] / 2)
        row("depth", "... and at the same FLOPs speed-up (interpolated along each width's curve)",
            "better or equal at {} of {} points".format(*c["same_speedup"]), c["same_speedup"][0] > c["same_speedup"][1] / 2)
    bench = load(run / "benchmark" / "bench.json")
    summary = load(run / "summary.json")
    if bench and len(bench.get("references", [])) == 2:
        lines.extend(deployment_targets(bench))
        lines.extend(certified_targets(bench, (summary or {}).get("promise")))
    levers = load(runs / "int8-levers" / "teacher-export.json")
    for lever in (levers or {}).get("levers", []):
        if "the default" in lever["name"] or "QAD" in lever["name"]:
            texts = levers["data"]["dev"] + levers["data"]["test"]
            row("int8", f"flip rate against fp32 <= 0.5 % at width 1, speed 0 (dev + test): {lever['name']}",
                f"{100 * lever['flip_rate']:.2f} % ({lever['flips']} of {texts})", lever["flip_rate"] <= 0.005)
    for name, title in (("sst2", "SST-2"), ("trec6", "TREC-6"), ("trec6-holdout", "TREC-6 with 500 texts held out")):
        resplit = load(runs / name / "resplit" / "resplit.json")
        if resplit:
            r = resplit["resplit"]
            row("certified speed", f"{title}: the promise holds on >= 85 % of {r['repeats']} re-splits of dev + test "
                "(the point chosen again on each dev-sized part)", f"{100 * r['held']:.0f} % of those that chose a "
                f"point ({100 * r['no_point']:.0f} % chose none)", r["held"] >= 0.85)
    for name, title in (("trec6", "TREC-6"), ("trec6-holdout", "TREC-6 with 500 texts held out")):
        other = load(runs / name / "benchmark" / "bench.json")
        if other and len(other.get("references", [])) == 2:
            lines.extend(certified_targets(other, (load(runs / name / "summary.json") or {}).get("promise"), title))
    if len(lines) == 2:
        return [missing(f"`{run}`", DATASETS[0].reproduce)]
    return lines


def deployment_targets(bench: dict) -> List[str]:
    """The deployment speed targets, from benchmarks/compare.py's bench.json (the adaptive point is the best on the
    test split itself: an oracle, not a deployable choice)."""
    paddle, onnx = bench["references"]
    results = {r["name"]: r for r in bench["results"]}
    out = []

    def row(text, value, ok):
        out.append(f"| deployment speed | {text} | {value} | {'yes' if ok else '**no**'} |")

    adaptive = [r for r in bench["results"] if r["name"].startswith("(d)")
                and r["against"][paddle]["accuracy_points"] >= -0.5]
    if adaptive:
        best = max(adaptive, key=lambda r: r["against"][paddle]["throughput_speedup"])
        p, o = best["against"][paddle], best["against"][onnx]
        row(f"<= 0.5 test points below the full fp32 model: >= 4x throughput (batch 32) and >= 3x lower latency "
            f"(batch 1) than the {paddle}", f"{best['name']}: {p['accuracy_points']:+.2f} points, "
            f"{p['throughput_speedup']:.2f}x, {p['latency_speedup']:.2f}x",
            p["throughput_speedup"] >= 4 and p["latency_speedup"] >= 3)
        row(f"... >= 3x throughput and >= 2x lower latency than the {onnx}",
            f"{o['throughput_speedup']:.2f}x, {o['latency_speedup']:.2f}x",
            o["throughput_speedup"] >= 3 and o["latency_speedup"] >= 2)
    for r in bench["results"]:
        if r["name"].startswith("(d)") and r["name"].endswith("ONNX Runtime fp32"):
            q = r["against"][onnx]
            row(f"{r['name']}: measured / FLOPs speed-up >= 0.8 at batch 32", f"{q['measured_per_flops']:.2f}",
                q["measured_per_flops"] >= 0.8)
    int8, fp32 = results.get("full model, ONNX Runtime int8"), results.get(onnx)
    if int8 and fp32:
        q = int8["against"][onnx]
        row("int8 at width 1.0, speed 0: <= 0.3 points below fp32 and >= 1.8x its throughput, same runtime",
            f"{q['accuracy_points']:+.2f} points, {q['throughput_speedup']:.2f}x",
            q["accuracy_points"] >= -0.3 and q["throughput_speedup"] >= 1.8)
    return out


CERTIFIED = {0.5: 3.0, 1.0: 4.0}
"""Budget (points) -> the throughput and latency speed-up the shipped point must buy at it."""


def certified_targets(bench: dict, promise: Optional[dict], data_set: str = "") -> List[str]:
    """The certified-speed targets: the point the pipeline chose on dev and shipped, and the point the same rule
    chooses at the other budget of :data:`CERTIFIED` (compare.py's ``budget 1.0`` rows), measured on test by the
    benchmark against the faster Paddle Inference full fp32 model, on the runtime and precision of the promise."""
    if promise is None or promise["max_accuracy_drop"] not in CERTIFIED:
        return []
    paddle = bench["references"][0]
    shipped = served_rows(bench, promise)
    on = {r["name"].rpartition("), ")[2] for r in shipped}  # the runtime and precision the promise is about
    out = []
    for budget, need in CERTIFIED.items():
        if budget == promise["max_accuracy_drop"]:
            rows, what = shipped, "the shipped point, chosen on dev"
        else:
            rows = [r for r in bench["results"] if r["name"].startswith("(d)") and f"(budget {budget:.1f})" in r["name"]
                    and r["name"].rpartition("), ")[2] in on]
            what = "the point chosen on dev by the same rule"
        if not rows:
            continue
        r = max(rows, key=lambda x: x["against"][paddle]["throughput_speedup"])
        q = r["against"][paddle]
        out.append(f"| certified speed{f' ({data_set})' if data_set else ''} | {what} (budget {budget:g} points, "
                   f"confidence {promise['confidence']}): test drop <= {budget:g}, >= {need:g}x throughput and >= "
                   f"{need:g}x lower latency than the {paddle} | {r['name']}: {abs(q['accuracy_points']):.2f} points "
                   f"{'above' if q['accuracy_points'] > 0.005 else 'below'}, {q['throughput_speedup']:.2f}x, "
                   f"{q['latency_speedup']:.2f}x | "
                   + ("yes" if -q["accuracy_points"] <= budget + 1e-9 and q["throughput_speedup"] >= need
                      and q["latency_speedup"] >= need else "**no**") + " |")
    return out


# ----------------------------------------------------------------------------- the document


def header(runs: Path) -> List[str]:
    log = load(runs / "reproduce.json") or {}
    machine = log.get("machine")
    steps = {k: v["seconds"] for k, v in log.items() if isinstance(v, dict) and "seconds" in v}
    where = ("The machine of the runs is not recorded (`reproduce.json`, written by benchmarks/reproduce.py, is "
             "missing); the deployment benchmark records its own.") if machine is None else (
        f"benchmarks/reproduce.py ran on {machine.get('cpus', '?')} CPU cores ({machine.get('processor', '?')}), "
        f"Python {machine.get('python', '?')}, paddlepaddle {machine.get('paddlepaddle', '?')}, no GPU; its steps "
        f"took {sum(steps.values()) / 3600:.1f} h (" + ", ".join(f"{k} {s / 60:.0f} min" for k, s in steps.items())
        + ").")
    return ["# Results", "",
            f"Written whole by `benchmarks/report.py --runs {runs}` from the run directories `make reproduce` makes "
            "(benchmarks/reproduce.py, then this script; `runs/` below is that directory); edit the script, not this "
            "page. A section whose run is missing is one line saying what makes it. " + where, "",
            "Accuracies are in %, differences and drops in points with paired-bootstrap 95 % intervals (the same "
            "sentences resampled for both systems). FLOPs are analytic: 2 x the multiply-accumulates of every matrix "
            "product, per sample from its real token count, branches included. Times are wall-clock on the machine "
            "of each run, medians of interleaved runs; a machine shared with other work makes them indicative only.",
            ""]


def render(runs: Path, figures: Path) -> str:
    """The whole of results.md; copies the figures it shows into ``figures`` and removes the ones it no longer
    shows."""
    figures.mkdir(parents=True, exist_ok=True)
    lines = header(runs)
    lines += ["## Headline: SST-2", "", "The headline table of README.md (`--readme README.md` copies it there).", "",
              *headline(runs), "",
              "## Targets", "", *targets(runs), ""]
    for dataset in DATASETS:
        lines += dataset_section(dataset, runs, figures)
        if dataset.name in ("sst2", "trec6"):
            lines += levers_section(runs, dataset)
        if dataset.name == "sst2":
            lines += int8_section(runs)
            lines += throughput_section(runs)
    lines += dataset_section(DEMO, runs, figures)
    for dataset in (*DATASETS, DEMO):
        if not (runs / dataset.name / "summary.json").is_file():
            (figures / f"{dataset.name}-speed.png").unlink(missing_ok=True)
    text = "\n".join(lines).rstrip() + "\n"
    return text.replace(f"{runs}/", "runs/")  # paths as `make reproduce` lays them out: the same page wherever --runs is


NUMBER = re.compile(r"(?<![\w.])[+−-]?\d+(?:\.\d+)?(?:x|/s| ms)?")


def readme_block(readme: str) -> Tuple[int, int]:
    """The character span between README.md's headline markers (the lines themselves excluded)."""
    start, end = readme.find(HEADLINE_START), readme.find(HEADLINE_END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {HEADLINE_START} ... {HEADLINE_END} block")
    return start + len(HEADLINE_START) + 1, end


def numbers_missing(block: str, results: str) -> List[str]:
    """The numbers of ``block``'s table rows (below its header) that ``results`` does not contain (as the same text)."""
    lines = block.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.startswith("| ---")), len(lines))
    numbers = [n.replace("−", "-") for line in lines[rule + 1:] if line.startswith("| ")
               for n in NUMBER.findall(line)]
    return [n for n in dict.fromkeys(numbers) if n not in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="runs", help="the directory holding sst2/, trec6/, ... (read only)")
    parser.add_argument("--output", default="docs", help="where results.md and figures/ go")
    parser.add_argument("--readme", default=None, help="also rewrite this README's headline table from the runs")
    parser.add_argument("--check-readme", default=None,
                        help="do not write: list the numbers of this README's headline table missing from "
                             "OUTPUT/results.md (exit code 1 if any)")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.output)
    if args.check_readme:
        readme = Path(args.check_readme).read_text(encoding="utf-8")
        start, end = readme_block(readme)
        absent = numbers_missing(readme[start:end], (out / "results.md").read_text(encoding="utf-8"))
        for number in absent:
            print(f"{args.check_readme}: {number} is not in {out / 'results.md'}")
        sys.exit(1 if absent else 0)
    if not runs.is_dir():
        raise SystemExit(f"--runs {runs} is not a directory")
    text = render(runs, out / "figures")
    (out / "results.md").write_text(text, encoding="utf-8")
    print(f"-> {out / 'results.md'}")
    if args.readme:
        path = Path(args.readme)
        readme = path.read_text(encoding="utf-8")
        start, end = readme_block(readme)
        table = "\n".join(headline(runs)).replace(f"{runs}/", "runs/")
        path.write_text(readme[:start] + table + "\n" + readme[end:], encoding="utf-8")
        print(f"-> {path} (headline table)")


if __name__ == "__main__":
    main()
