"""Every experiment behind docs/results.md, from scratch: `make reproduce`.

In this order: the SST-2 (MiniLM) pipeline; the wall-clock benchmark and the
one-against-many-processes finetune throughput, while nothing else runs; a first
report; the re-splits of SST-2's calibration; TREC-6 (MiniLM, 6 classes), its
benchmark and re-splits, and TREC-6 again with 500 training texts held out to
calibrate on; the SST-2 branch ablations (trained on labels
only; one set per width); douban_book_review (random initialisation with a
character vocabulary); the SST-2 random-initialisation baseline; the report again
(benchmarks/report.py: docs/results.md whole, and README.md's headline table).
Finished stages are skipped, so an interrupted reproduce picks up where it was.
The accuracy levers (benchmarks/ablation.py: supernet and branch training choices,
three seeds) run only when named: ``--only sst2-ablation trec6-ablation report``.

    .venv/bin/python benchmarks/reproduce.py --data ../shared/data --runs runs
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--only", nargs="+", default=None, help="steps to run (default: all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads (default: all cores; fewer to run two reproduces side by side)")
    args = parser.parse_args()

    import paddle

    import paddle_dynafast as pdf
    from paddle_dynafast import atomic
    from paddle_dynafast.config import (BranchConfig, DataConfig, EvaluateConfig, FinetuneConfig, ModelSize,
                                        SelfDistillConfig, TrainConfig)

    paddle.base.core.set_num_threads(args.threads)
    data, runs = Path(args.data), Path(args.runs)
    minilm = str(pdf.minilm_dir())
    log_path = runs / "reproduce.json"

    def step(name, function):
        if args.only and name not in args.only:
            return
        started = time.perf_counter()
        function()
        log = json.loads(log_path.read_text()) if log_path.is_file() else {}  # another reproduce may have written
        log[name] = {"seconds": round(time.perf_counter() - started, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        log["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "python": platform.python_version(), "paddlepaddle": paddle.__version__}
        atomic.write_json(log_path, log)

    def train(epochs, lr):
        return TrainConfig(epochs=epochs, lr=lr)

    sst2_data = DataConfig(data_dir=str(data / "sst2"), max_seq_len=64)
    sst2 = pdf.PipelineConfig(output_dir=str(runs / "sst2"), data=sst2_data, model_dir=minilm,
                              int8=True)  # every default, shipped as `pipeline --int8` ships: calibrated on int8
    step("sst2", lambda: pdf.run_pipeline(sst2))

    # wall-clock measurements next, while nothing else runs; then a first report
    step("sst2-benchmark", lambda: subprocess.run(
        [sys.executable, str(HERE / "compare.py"), "--run", str(runs / "sst2"), "--data-dir", str(data / "sst2")],
        check=True))
    step("sst2-timed-int8", lambda: subprocess.run(
        [sys.executable, "-m", "paddle_dynafast", "calibrate", "--model", str(runs / "sst2" / "dynafast"),
         "--data-dir", str(data / "sst2"), "--output", str(runs / "sst2" / "timed-int8"), "--runtime", "onnxruntime",
         "--precision", "int8", "--min-throughput-speedup", "4"], check=True))
    step("int8-levers", lambda: subprocess.run(
        [sys.executable, str(HERE / "int8_levers.py"), "--export", str(runs / "sst2" / "export-full"), "--data-dir",
         str(data / "sst2"), "--output", str(runs / "int8-levers" / "teacher-export.md")], check=True))
    step("distributed-throughput", lambda: distributed_throughput(minilm, data / "sst2", runs / "distributed"))
    report = lambda: subprocess.run(  # noqa: E731
        [sys.executable, str(HERE / "report.py"), "--runs", str(runs), "--output", str(HERE.parent / "docs"),
         "--readme", str(HERE.parent / "README.md")], check=True)
    step("report", report)

    def resplits(name):  # how often the promise of a calibration on measured time holds on re-splits of dev + test
        return lambda: subprocess.run(
            [sys.executable, str(HERE / "resplit_timed.py"), "--calibration", str(runs / name / "calibration"),
             "--output", str(runs / name / "resplit" / "resplit.md")], check=True)

    step("sst2-resplit", resplits("sst2"))
    trec_data = DataConfig(data_dir=str(data / "trec6"), max_seq_len=32)
    trec = pdf.PipelineConfig(output_dir=str(runs / "trec6"), data=trec_data, model_dir=minilm, int8=True)
    step("trec6", lambda: pdf.run_pipeline(trec))
    step("trec6-benchmark", lambda: subprocess.run(
        [sys.executable, str(HERE / "compare.py"), "--run", str(runs / "trec6"), "--data-dir", str(data / "trec6")],
        check=True))
    step("trec6-resplit", resplits("trec6"))
    # the same with 500 more training texts kept out of every stage and calibrated on with dev (power to certify)
    trec_holdout = replace(trec, output_dir=str(runs / "trec6-holdout"), data=replace(trec_data, holdout=500))
    step("trec6-holdout", lambda: pdf.run_pipeline(trec_holdout))
    step("trec6-holdout-resplit", resplits("trec6-holdout"))

    def ablations():
        base = SelfDistillConfig(output_dir="", model_dir=str(runs / "sst2" / "supernet"), data=sst2_data,
                                 train=sst2.distill, branch=BranchConfig())
        for name, change in (("dynafast-labels", {"objective": "labels"}),
                             ("dynafast-per-width", {"shared_branches": False})):
            pdf.self_distill(replace(base, output_dir=str(runs / "sst2" / name), **change))
            pdf.run_evaluation(EvaluateConfig(model_dir=str(runs / "sst2" / name),
                                              output_dir=str(runs / "sst2" / f"evaluation-{name}"), data=sst2_data),
                               overwrite=True)  # a step that is run again replaces its own evaluation

    step("sst2-ablations", ablations)

    # 8000 examples per split (of 20000 / 10000 / 10000) to keep the whole reproduce within a working morning
    douban = pdf.PipelineConfig(output_dir=str(runs / "douban"),
                                data=DataConfig(data_dir=str(data / "douban_book_review"), max_seq_len=128,
                                                max_examples=8000),
                                random_init=True, size=ModelSize(hidden_size=256, num_layers=6, num_heads=4,
                                                                 intermediate_size=1024),
                                finetune=train(3, 1e-4), supernet=train(2, 5e-5), distill=train(2, 5e-4))
    step("douban", lambda: pdf.run_pipeline(douban))
    step("sst2-random", lambda: pdf.finetune(FinetuneConfig(
        output_dir=str(runs / "sst2-random"), data=sst2_data, model_dir=minilm, random_init=True)))

    # the accuracy levers (benchmarks/ablation.py): about an hour per supernet lever and seed on two
    # cores, so only when named (--only sst2-ablation trec6-ablation report); report.py shows RUN-ablation/ablation.md
    for name in ("sst2", "trec6"):
        if args.only and f"{name}-ablation" in args.only:
            step(f"{name}-ablation", lambda name=name: subprocess.run(
                [sys.executable, str(HERE / "ablation.py"), "--teacher", str(runs / name / "teacher"),
                 "--data", str(data / name), "--output", str(runs / f"{name}-ablation"), "--seeds", "42", "43", "44",
                 "--threads", str(args.threads)], check=True))
    step("report", report)


def distributed_throughput(model: str, data_dir: Path, out: Path, steps: int = 100) -> None:
    """Samples per second of the finetune stage: one process on every core against one process per core under
    paddle.distributed.launch (gloo on CPU), same global batch of 32 and the same steps."""
    cores = os.cpu_count() or 1
    common = ["finetune", "--model", model, "--data-dir", str(data_dir), "--max-seq-len", "64", "--batch-size", "32",
              "--max-steps", str(steps), "--restart"]
    cli = [sys.executable, "-m", "paddle_dynafast"]
    launch = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(cores),
              "--log_dir", str(out / "launch-logs"),
              str(Path(sys.executable).with_name("paddle-dynafast"))]
    result = {}
    for name, command, threads in (("1 process", cli, cores), (f"{cores} processes", launch, 1)):
        target = out / name.replace(" ", "-")
        subprocess.run(command + common + ["--output", str(target), "--threads", str(threads)], check=True)
        metrics = json.loads((target / "metrics.json").read_text())
        result[name] = {"threads_per_process": threads, "steps": metrics["train_steps"],
                        "train_seconds": metrics["train_seconds"],
                        "samples_per_second": round(32 * metrics["train_steps"] / metrics["train_seconds"], 2)}
    (out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))

if __name__ == "__main__":
    main()
