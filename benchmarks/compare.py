"""Side by side, one process, interleaved: what paddle_dynafast buys against what users deploy today.

(a) the fine-tuned PaddleNLP BertForSequenceClassification in dygraph; (b) the
same exported to Paddle Inference (the reference of every ratio); (c) the
width-0.5 sub-model in Paddle Inference; (d) the adaptive model (exit loop
inside) in Paddle Inference at the operating points chosen by calibrate; (e) the
teacher through ONNX Runtime. For each: accuracy and mean analytic FLOPs on the
test split, latency at batch 1 (median and p90 over 200 texts), throughput at
batch 32, peak memory (each system alone in a fresh process), and every ratio
against (b). Every runtime gets the same thread count; ONNX Runtime does not spin.

Run, on a finished pipeline directory (`paddle-dynafast pipeline --output runs/sst2 ...`):

    .venv/bin/python benchmarks/compare.py --run runs/sst2 --data-dir ../shared/data/sst2
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

from paddle_dynafast import artifacts, data
from paddle_dynafast.model.backbone import load_tokenizer
from paddle_dynafast.runtime import bench
from paddle_dynafast.runtime.dygraph import DygraphRuntime
from paddle_dynafast.runtime.export import export_is_current, export_model
from paddle_dynafast.runtime.onnx_runtime import OnnxRuntime
from paddle_dynafast.runtime.paddle_inference import PaddleInferenceRuntime


def exports(run: Path, calibration: dict) -> dict:
    """Export directories of every system (made when missing or stale)."""
    wanted = {"teacher": (run / "teacher", 1.0, True, True), "width-0.5": (run / "supernet", 0.5, True, False)}
    for name in ("fewest_flops_within_accuracy_budget", "best_accuracy_within_flops_budget"):
        point = calibration[name]
        if point is not None:
            wanted[f"adaptive-w{point['width']:g}"] = (run / "dynafast", point["width"], False, False)
    out = {}
    for name, (source, width, no_exit, onnx) in wanted.items():
        directory = run / "benchmark" / f"export-{name}"
        if not export_is_current(directory, source, width, no_exit, onnx):
            export_model(source, directory, width=width, no_exit=no_exit, onnx=onnx, overwrite=True)  # stale: ours
        out[name] = directory
    return out


def systems(run: Path, dirs: dict, calibration: dict, threads: int, onednn: bool, only: int | None = None):
    """The systems in table order, the first, (b), being the reference; ``only`` builds just that one."""
    def paddle_inference(key, speed, name):
        return lambda: bench.runtime_system(PaddleInferenceRuntime(dirs[key], threads=threads, onednn=onednn),
                                            speed, name)

    builders = [paddle_inference("teacher", 0.0, "(b) teacher, Paddle Inference"),
                lambda: bench.runtime_system(DygraphRuntime(run / "teacher", exit_loop=False, threads=threads),
                                             name="(a) teacher, PaddleNLP dygraph"),
                paddle_inference("width-0.5", 0.0, "(c) width 0.5, Paddle Inference")]
    for key, label in (("fewest_flops_within_accuracy_budget", "fewest FLOPs within the accuracy budget"),
                       ("best_accuracy_within_flops_budget", "best accuracy within the FLOPs budget")):
        point = calibration[key]
        if point is not None:
            builders.append(paddle_inference(f"adaptive-w{point['width']:g}", point["speed"],
                                             f"(d) adaptive w{point['width']:g} s{point['speed']:g} ({label})"))
    builders.append(lambda: bench.runtime_system(OnnxRuntime(dirs["teacher"], threads=threads),
                                                 name="(e) teacher, ONNX Runtime"))
    if only is not None:
        return [builders[only]()]
    return [build() for build in builders]


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM). Not ru_maxrss: Linux carries a parent's ru_maxrss over
    fork and exec into the child, so every probe started by a large parent reported the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def memory_table(run: Path, names: list, data_dir: str, threads: int) -> tuple:
    memory = [peak_memory_mb(run, i, data_dir, threads) for i in range(len(names))]
    table = "\nPeak memory, each system alone in a fresh process (without oneDNN):\n\n" + \
        "| system | peak resident memory (MB) |\n| --- | --- |\n" + \
        "".join(f"| {n} | {m:.0f} |\n" for n, m in zip(names, memory))
    return dict(zip(names, memory)), table


def peak_memory_mb(run: Path, index: int, data_dir: str, threads: int) -> float:
    """Peak resident memory of system ``index`` alone in a fresh process, through one pass over the test split."""
    result = subprocess.run([sys.executable, __file__, "--run", str(run), "--data-dir", data_dir,
                             "--threads", str(threads), "--memory-probe", str(index)],
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"memory probe {index} failed: {result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for r in results:
        axes.scatter(r.ratios["throughput_speedup"], 100 * r.accuracy, label=r.name)
        axes.scatter(r.ratios["flops_speedup"], 100 * r.accuracy, marker="x", color="grey")
    axes.set_xlabel("speed-up against (b): measured throughput at batch 32 (dots), FLOPs (crosses)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_xscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a pipeline run directory")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory-probe", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-only", action="store_true",
                        help="measure peak memory again and rewrite it into an existing benchmark, timings kept")
    args = parser.parse_args()

    run = Path(args.run)
    calibration = artifacts.read_json(run / "calibration" / "calibration.json")
    dirs = exports(run, calibration)
    info = artifacts.read_json(dirs["teacher"] / "export.json")
    tokenizer = load_tokenizer(dirs["teacher"])
    features = data.encode(data.load_splits(args.data_dir)["test"], tokenizer, info["max_seq_len"], info["labels"])
    gold = [f.label for f in features]
    if args.memory_probe is not None:
        (system,) = systems(run, dirs, calibration, args.threads, onednn=False, only=args.memory_probe)
        bench.run_all(system, bench.batches(features, tokenizer.pad_token_id, 32), len(features))
        print(peak_rss_mb())
        return
    out = run / "benchmark"
    if args.memory_only:
        report = artifacts.read_json(out / "bench.json")
    else:
        report = {"test_examples": len(features), "threads": args.threads,
                  "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                              "python": platform.python_version()},
                  "settings": {}, "tables": []}  # tables: the timings' Markdown, reused by --memory-only
        # Paddle Inference with and without oneDNN: measured here, oneDNN is faster at batch 32, slower at batch 1.
        for onednn in (False, True):
            measured = systems(run, dirs, calibration, args.threads, onednn)
            results = bench.measure(measured, features, gold, tokenizer.pad_token_id, samples=args.samples,
                                    rounds=args.rounds)
            report["settings"]["onednn" if onednn else "plain"] = bench.to_json(results)
            report["tables"].append(f"Paddle Inference {'with' if onednn else 'without'} oneDNN:\n\n"
                                    + bench.markdown(results, 32))
            if not onednn:
                plot(results, out / "accuracy_vs_speedup.png")
    names = [r["name"] for r in report["settings"]["plain"]]
    report["peak_memory_mb"], memory = memory_table(run, names, args.data_dir, args.threads)
    table = "\n".join(report["tables"]) + memory
    artifacts.write_json(out / "bench.json", report)
    artifacts.write_text(out / "bench.md", table)
    print(table)


if __name__ == "__main__":
    main()
