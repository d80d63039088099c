"""Side by side: what paddle_dynafast buys against what users deploy today, every runtime and precision.

Systems (SST-2 test unless --split): (a) the fine-tuned PaddleNLP classifier in
dygraph; the full model exported, in Paddle Inference with native kernels, with
oneDNN, with oneDNN and the native kernels below the batch size from which oneDNN
pays (measured on each export), with oneDNN bfloat16, and in ONNX Runtime in fp32
and int8; (c) the width-0.5 sub-model; (d) the adaptive export (exit loop inside)
the run ships (``RUN/export``, at the point its calibration chose and promised)
and, after a calibration on FLOPs, at the point chosen for the FLOPs budget, or
after one on measured time, at the point the same rule chooses for a budget of 1
point (the fastest measured point whose promised drop is within it: promised drops
do not depend on the budget), on every runtime and precision the export holds.
For each: accuracy, mean analytic FLOPs and exit layer, median latency at batch 1,
throughput at batch 32, peak memory, and ratios against the full model in the
fastest Paddle Inference fp32 configuration and in ONNX Runtime fp32.

Each system runs alone in a fresh process (runtimes do not share threads or
caches), and the processes take turns, round after round (A, B, C, A, B, C, ...),
so that the noise of a shared machine falls on every system alike; the figures
are medians over rounds. Every input shape is seen once before timing. As the
paddle-dynafast command does, it sets MKL_DEBUG_CPU_TYPE=5 on an AMD CPU with AVX2
unless the variable is set (Paddle's native kernels then take MKL's AVX2 path);
bench.json records it.

    .venv/bin/python benchmarks/compare.py --run runs/sst2 --data-dir ../shared/data/sst2 --output runs/sst2/benchmark
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from paddle_dynafast import atomic, data
from paddle_dynafast.analysis.promise import CALIBRATION_FILE
from paddle_dynafast.analysis.results import CalibrationResult, TimedResult
from paddle_dynafast.analysis.timed import choose_points
from paddle_dynafast.config import Budget, ExportConfig
from paddle_dynafast.mkl import mkl_avx2_on_amd
from paddle_dynafast.model.loading import load_tokenizer
from paddle_dynafast.runtime import bench, choose
from paddle_dynafast.runtime.auto import open_runtime
from paddle_dynafast.runtime.dygraph import DygraphRuntime
from paddle_dynafast.runtime.export import export_is_current, export_model
from paddle_dynafast.runtime.export_info import INT8_ONNX_FILE, ExportInfo

MEASURED = "measured"
"""An option value found by measurement on each export before timing (``native_below``: :func:`choose.crossover`)."""
RUNTIMES = [("paddle-inference", "fp32", {"onednn": False}, "Paddle Inference native fp32"),
            ("paddle-inference", "fp32", {"onednn": True}, "Paddle Inference oneDNN fp32"),
            ("paddle-inference", "fp32", {"onednn": True, "native_below": MEASURED},
             "Paddle Inference oneDNN fp32, native below N"),
            ("paddle-inference", "bf16", {"onednn": True}, "Paddle Inference oneDNN bf16"),
            ("onnxruntime", "fp32", {}, "ONNX Runtime fp32"),
            ("onnxruntime", "int8", {}, "ONNX Runtime int8")]
"""Every runtime and precision a system is measured on."""


SECOND_BUDGET = 1.0
"""After a calibration on measured time, the point chosen for this budget (points) is measured beside the shipped
one (the certified-speed targets are at 0.5 and 1 point)."""


def default_points(run: Path) -> List[dict]:
    """The shipped point (labelled with its budget), and the point of the FLOPs budget (a calibration on FLOPs) or of
    a budget of :data:`SECOND_BUDGET` point (a calibration on measured time, at the same confidence)."""
    promise = ExportInfo.read(run / "export").promise
    points = [{"width": promise.width, "speed": promise.speed, "label": f"shipped, budget {promise.max_accuracy_drop:g}",
               "shipped": True}]
    flops, timed = run / "calibration" / CALIBRATION_FILE, run / "calibration" / "timed.json"
    if flops.is_file():
        cheap = CalibrationResult.from_json(atomic.read_json(flops)).best_accuracy_within_flops_budget
        if cheap is not None:
            points.append({"width": cheap.width, "speed": cheap.speed, "label": "FLOPs budget"})
    elif timed.is_file() and promise.max_accuracy_drop != SECOND_BUDGET:
        result = TimedResult.from_json(atomic.read_json(timed))
        second, _ = choose_points(result.points, Budget(max_accuracy_drop=SECOND_BUDGET,
                                                       confidence=result.budget.confidence))
        if second is not None and (second.width, second.speed) != (promise.width, promise.speed):
            points.append({"width": second.width, "speed": second.speed, "label": f"budget {SECOND_BUDGET:.1f}"})
    return points


def exports(run: Path, points: List[dict], trust_pickle: bool) -> Dict[str, Path]:
    """Export directories (ONNX and int8 included) of the full model, the width-0.5 sub-model and every width of
    ``points``, made when missing or stale, in ``run/benchmark``."""
    wanted = {"full": (run / "teacher", 1.0, True), "width-0.5": (run / "supernet", 0.5, True)}
    for point in points:
        if not point.get("shipped"):
            wanted[f"adaptive-w{point['width']:g}"] = (run / "dynafast", point["width"], False)
    out = {}
    for name, (source, width, no_exit) in wanted.items():
        directory = run / "benchmark" / f"export-{name}"
        config = ExportConfig(source, directory, width=width, no_exit=no_exit, onnx=True, int8=True)
        if not export_is_current(directory, source, width, no_exit, onnx=True, int8=config.int8_activations,
                                 int8_float_products=config.int8_float_products):
            export_model(config, overwrite=True, trust_pickle=trust_pickle)
        out[name] = directory
    return out


def systems(run: Path, points: List[dict], dirs: Dict[str, Path]) -> List[dict]:
    """Every system as a JSON-able spec for :func:`measure_one`, in table order."""
    specs = [{"name": "(a) full model, PaddleNLP dygraph", "kind": "dygraph", "directory": str(run / "teacher"),
              "speed": 0.0, "group": "full"}]
    for kind, precision, options, label in RUNTIMES:
        specs.append({"name": f"full model, {label}", "kind": kind, "precision": precision, "options": options,
                      "directory": str(dirs["full"]), "speed": 0.0, "group": "full"})
    for kind, precision, options, label in RUNTIMES:
        specs.append({"name": f"(c) width 0.5, {label}", "kind": kind, "precision": precision, "options": options,
                      "directory": str(dirs["width-0.5"]), "speed": 0.0, "group": "width-0.5"})
    for point in points:
        directory = run / "export" if point.get("shipped") else dirs[f"adaptive-w{point['width']:g}"]
        for kind, precision, options, label in RUNTIMES:
            if precision == "int8" and not (directory / INT8_ONNX_FILE).is_file():
                continue  # shipped without int8
            specs.append({"name": f"(d) w{point['width']:g} s{point['speed']:g} ({point['label']}), {label}",
                          "kind": kind, "precision": precision, "options": options,
                          "directory": str(directory), "speed": point["speed"], "group": point["label"]})
    return specs


def with_crossover(spec: dict, threads: int) -> dict:
    """``spec`` with a measured ``native_below`` (the batch size from which oneDNN pays on its export) in its options
    and its name."""
    if spec.get("options", {}).get("native_below") != MEASURED:
        return spec
    below, _ = choose.crossover(spec["directory"], threads, spec["speed"])
    return {**spec, "options": {**spec["options"], "native_below": below},
            "name": spec["name"].replace("below N", f"below {below}")}


def measure_one(spec: dict, data_dir: str, split: str, threads: int, samples: int, batch_size: int) -> dict:
    """Accuracy, exits, FLOPs, latency, throughput and peak memory of one system, in this process."""
    if spec["kind"] == "dygraph":
        runtime = DygraphRuntime(spec["directory"], exit_loop=False, threads=threads, trust_pickle=True)
    else:
        runtime = open_runtime(spec["directory"], spec["kind"], threads, spec.get("precision", "fp32"),
                               **spec.get("options", {}))
    info = runtime.info
    tokenizer = load_tokenizer(info.directory)
    features = data.encode(data.load_splits(data_dir)[split], tokenizer, info.max_seq_len, list(info.labels),
                           quiet=True)
    system = bench.runtime_system(runtime, spec["speed"], spec["name"])
    (result,) = bench.measure([system], features, [f.label for f in features], tokenizer.pad_token_id,
                              samples=samples, batch_size=batch_size, rounds=1)
    out = bench.to_json([result])[0]
    out["peak_memory_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM). Not ru_maxrss: Linux carries a parent's ru_maxrss over
    fork and exec into the child."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def ratios(results: List[dict], reference: dict) -> None:
    """Speed-ups of every result against ``reference`` (accuracy points, FLOPs, latency, throughput, quotient)."""
    key = reference["name"]
    for r in results:
        flops = reference["mean_flops"] / r["mean_flops"]
        throughput = r["throughput"] / reference["throughput"]
        r.setdefault("against", {})[key] = {
            "accuracy_points": round(100 * (r["accuracy"] - reference["accuracy"]), 2), "flops_speedup": flops,
            "latency_speedup": reference["latency_ms_median"] / r["latency_ms_median"],
            "throughput_speedup": throughput, "measured_per_flops": throughput / flops}


def markdown(results: List[dict], references: List[dict]) -> str:
    names = [r["name"] for r in references]
    head = ("| system | test acc | FLOPs speed-up | latency b=1 | throughput b=32 | "
            + " | ".join(f"vs {n}: Δ points, latency, throughput, measured/FLOPs" for n in names) + " | peak MB |")
    lines = [head, "| " + " | ".join("---" for _ in range(6 + len(names))) + " |"]
    for r in results:
        cells = []
        for n in names:
            q = r["against"][n]
            cells.append(f"{q['accuracy_points']:+.2f}, {q['latency_speedup']:.2f}x, {q['throughput_speedup']:.2f}x, "
                         f"{q['measured_per_flops']:.2f}")
        first = r["against"][names[0]]
        lines.append(f"| {r['name']} | {100 * r['accuracy']:.2f} | {first['flops_speedup']:.2f}x "
                     f"| {r['latency_ms_median']:.2f} ms | {r['throughput']:.0f}/s | " + " | ".join(cells)
                     + f" | {r['peak_memory_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a pipeline run directory")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output", default=None, help="default: RUN/benchmark")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=200, help="texts timed one by one for latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", default=None,
                        help="measure the systems whose name holds this text (repeat for several)")
    parser.add_argument("--trust-pickle", action="store_true", help="the run was written by an earlier version")
    parser.add_argument("--points", default=None,
                        help="JSON list of {width, speed, label} (default: calibrate's two choices)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:  # a child: one system, one round
        print(json.dumps(measure_one(json.loads(args.one), args.data_dir, args.split, args.threads, args.samples,
                                     32)))
        return

    said = mkl_avx2_on_amd()  # as the paddle-dynafast command does; the children, which time, inherit it
    if said:
        print(said, file=sys.stderr)
    run = Path(args.run)
    out = Path(args.output or run / "benchmark")
    if args.points:
        points = json.loads(args.points)
    else:
        points = default_points(run)
    dirs = exports(run, points, args.trust_pickle)
    specs = [s for s in systems(run, points, dirs) if args.only is None or any(o in s["name"] for o in args.only)]
    specs = [with_crossover(s, args.threads) for s in specs]
    rounds: Dict[str, List[dict]] = {s["name"]: [] for s in specs}
    for round_index in range(args.rounds):
        for spec in specs:
            done = subprocess.run([sys.executable, __file__, "--run", str(run), "--data-dir", args.data_dir,
                                   "--split", args.split, "--threads", str(args.threads), "--samples",
                                   str(args.samples), "--one", json.dumps(spec)],
                                  capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise SystemExit(f"{spec['name']} failed:\n{done.stderr[-3000:]}")
            rounds[spec["name"]].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {round_index + 1}/{args.rounds}: {spec['name']}: "
                  f"{rounds[spec['name']][-1]['throughput']:.0f}/s", file=sys.stderr)
    results = []
    for spec in specs:
        measured = rounds[spec["name"]]
        result = dict(measured[0])  # accuracy, FLOPs and exits are the same every round
        for key in ("latency_ms_median", "latency_ms_p90", "throughput", "peak_memory_mb"):
            result[key] = float(np.median([m[key] for m in measured]))
        result["rounds"] = {key: [m[key] for m in measured] for key in ("latency_ms_median", "throughput")}
        result["group"] = spec["group"]
        results.append(result)
    full = [r for r in results if r["group"] == "full"]
    references = []
    paddle = [r for r in full if "Paddle Inference" in r["name"] and "fp32" in r["name"]]
    if paddle:
        references.append(max(paddle, key=lambda r: r["throughput"]))
    onnx = [r for r in full if "ONNX Runtime fp32" in r["name"]]
    references += onnx
    for reference in references:
        ratios(results, reference)
    report = {"split": args.split, "threads": args.threads, "rounds": args.rounds, "samples": args.samples,
              "machine": {"cpus": os.cpu_count(), "processor": choose.cpu_name(), "python": platform.python_version(),
                          "MKL_DEBUG_CPU_TYPE": os.environ.get("MKL_DEBUG_CPU_TYPE")},
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "points": points,
              "references": [r["name"] for r in references], "results": results}
    table = markdown(results, references) if references else ""
    atomic.write_json(out / "bench.json", report)
    atomic.write_text(out / "bench.md", table)
    print(table)


if __name__ == "__main__":
    main()
