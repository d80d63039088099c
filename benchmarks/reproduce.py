"""Every experiment behind docs/results.md, from scratch: `make reproduce`.

SST-2 (MiniLM): the pipeline, the branch ablations (per-width sets; trained on
labels only), the random-initialisation baseline and the side-by-side benchmark.
TREC-6 (MiniLM, 6 classes) and douban_book_review (random initialisation with a
character vocabulary): the pipeline. Then benchmarks/report.py writes the report.
Finished stages are skipped, so an interrupted reproduce picks up where it was.

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
    args = parser.parse_args()

    import paddle

    import paddle_dynafast as pdf
    from paddle_dynafast import artifacts
    from paddle_dynafast.config import (BranchConfig, DataConfig, EvaluateConfig, FinetuneConfig, ModelSize,
                                        SelfDistillConfig, TrainConfig)

    paddle.base.core.set_num_threads(os.cpu_count() or 1)
    data, runs = Path(args.data), Path(args.runs)
    minilm = str(pdf.minilm_dir())
    log_path = runs / "reproduce.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}

    def step(name, function):
        if args.only and name not in args.only:
            return
        started = time.perf_counter()
        function()
        log[name] = {"seconds": round(time.perf_counter() - started, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        log["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "python": platform.python_version(), "paddlepaddle": paddle.__version__}
        artifacts.write_json(log_path, log)

    def train(epochs, lr):
        return TrainConfig(epochs=epochs, batch_size=32, lr=lr, seed=42)

    sst2_data = DataConfig(data_dir=str(data / "sst2"), max_seq_len=64)
    sst2 = pdf.PipelineConfig(output_dir=str(runs / "sst2"), data=sst2_data, model_dir=minilm,
                              finetune=train(3, 5e-5), supernet=train(5, 2e-5), distill=train(3, 5e-4))
    step("sst2", lambda: pdf.run_pipeline(sst2))

    def ablations():
        base = SelfDistillConfig(output_dir="", model_dir=str(runs / "sst2" / "supernet"), data=sst2_data,
                                 train=sst2.distill, branch=BranchConfig())
        for name, change in (("dynafast-per-width", {"shared_branches": False}),
                             ("dynafast-labels", {"objective": "labels"})):
            pdf.self_distill(replace(base, output_dir=str(runs / "sst2" / name), **change))
            pdf.evaluate(EvaluateConfig(model_dir=str(runs / "sst2" / name),
                                        output_dir=str(runs / "sst2" / f"evaluation-{name}"), data=sst2_data))

    step("sst2-ablations", ablations)
    step("sst2-random", lambda: pdf.finetune(FinetuneConfig(
        output_dir=str(runs / "sst2-random"), data=sst2_data, train=train(3, 5e-5), model_dir=minilm,
        random_init=True)))

    trec = pdf.PipelineConfig(output_dir=str(runs / "trec6"), data=DataConfig(data_dir=str(data / "trec6"),
                                                                               max_seq_len=32),
                              model_dir=minilm, finetune=train(3, 5e-5), supernet=train(5, 2e-5),
                              distill=train(3, 5e-4))
    step("trec6", lambda: pdf.run_pipeline(trec))

    douban = pdf.PipelineConfig(output_dir=str(runs / "douban"),
                                data=DataConfig(data_dir=str(data / "douban_book_review"), max_seq_len=128),
                                random_init=True, size=ModelSize(hidden_size=256, num_layers=6, num_heads=4,
                                                                 intermediate_size=1024),
                                finetune=train(3, 1e-4), supernet=train(2, 5e-5), distill=train(2, 5e-4))
    step("douban", lambda: pdf.run_pipeline(douban))
    # last, when nothing else runs: wall-clock measurements
    step("sst2-benchmark", lambda: subprocess.run(
        [sys.executable, str(HERE / "compare.py"), "--run", str(runs / "sst2"), "--data-dir", str(data / "sst2")],
        check=True))
    step("report", lambda: subprocess.run(
        [sys.executable, str(HERE / "report.py"), "--runs", str(runs), "--output", "docs"], check=True))


if __name__ == "__main__":
    main()
