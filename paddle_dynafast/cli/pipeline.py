"""``paddle-dynafast pipeline``: every training stage in order into one run directory, then calibrate, evaluate
and export, and a summary (:func:`paddle_dynafast.pipeline.run_pipeline`); finished stages are skipped and
interrupted ones resume.

Example (the README's demo)::

    paddle-dynafast pipeline --model MODEL_DIR --data-dir ../shared/data/sst2 --output runs/sst2 --max-seq-len 64 \\
        --quick
"""
from __future__ import annotations

import argparse

from ..config import EXPORT_RUNTIMES, PipelineConfig, TrainConfig, default
from ..pipeline import quick, run_pipeline, step_dirs, summary_table
from ..train import STAGES
from ..train.finetune import add_size_arguments, size_from_args
from .common import add_budget_args, add_data_args, add_int8_float_products_arg, data_config, names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pipeline", help="every stage in order into one run directory, then a summary",
        description=f"{', '.join(s.name for s in STAGES)}, calibrate, evaluate and export into --output; finished "
                    "stages are skipped and interrupted ones resume.",
        epilog="example: paddle-dynafast pipeline --model MODEL_DIR --data-dir ../shared/data/sst2 --output runs/sst2 "
               "--max-seq-len 64 --quick")
    add_data_args(p)
    p.add_argument("--model", default=None, help="pretrained model directory (omit with --random-init for characters)")
    p.add_argument("--random-init", action="store_true", help="start the teacher from random weights")
    add_size_arguments(p)
    first = default(PipelineConfig, "finetune")
    p.add_argument("--seed", type=int, default=first.seed, help=f"random seed of every stage (default {first.seed})")
    p.add_argument("--batch-size", type=int, default=first.batch_size,
                   help=f"training batch size of every stage (default {first.batch_size})")
    for stage in ("finetune", "supernet", "distill"):
        epochs = default(PipelineConfig, stage).epochs
        p.add_argument(f"--{stage}-epochs", type=int, default=epochs, help=f"(default {epochs})")
    widths = default(PipelineConfig, "widths")
    p.add_argument("--widths", type=float, nargs="+", default=list(widths),
                   help=f"supernet widths (default {' '.join(map(str, widths))})")
    add_budget_args(p)
    p.add_argument("--int8", action="store_true",
                   help="serve the adaptive model in int8 (ONNX Runtime): calibrated on time measured as that program")
    add_int8_float_products_arg(p, "with --int8")
    p.add_argument("--runtime", choices=names(EXPORT_RUNTIMES), default=None,
                   help="calibrate on time measured on this runtime in the served precision (default: onnxruntime "
                        "with --int8, else on FLOPs in dygraph fp32)")
    p.add_argument("--quick", action="store_true",
                   help="the demo: a slice of each split, one epoch per stage (the supernet 6 steps), widths 1 and "
                        "0.5, int8")
    p.add_argument("--logdir", default=None, help="VisualDL logs, one subdirectory per stage")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Every stage's schedule at its pipeline default learning rate, with the epochs, batch size and seed given;
    ``--quick`` makes it the demo's (:func:`paddle_dynafast.pipeline.quick`)."""
    def train(stage: str) -> TrainConfig:
        stage_default = default(PipelineConfig, stage)
        return TrainConfig(epochs=getattr(args, f"{stage}_epochs"), batch_size=args.batch_size, lr=stage_default.lr,
                           seed=args.seed)

    config = PipelineConfig(
        output_dir=args.output, data=data_config(args), model_dir=args.model, random_init=args.random_init,
        size=size_from_args(args), finetune=train("finetune"), supernet=train("supernet"), distill=train("distill"),
        widths=tuple(args.widths), max_accuracy_drop=args.max_accuracy_drop, min_flops_speedup=args.min_flops_speedup,
        confidence=args.confidence, int8=args.int8, runtime=args.runtime,
        int8_float_products=args.int8_float_products)
    return quick(config) if args.quick else config


def run(args: argparse.Namespace) -> int:
    result = run_pipeline(config_from_args(args), logdir=args.logdir, trust_pickle=args.trust_pickle)
    print(summary_table(result.summary), end="")
    plot = step_dirs(result.output_dir)["evaluate"] / "evaluation.png"
    print(f"-> {result.output_dir}/summary.json" + (f", accuracy against FLOPs: {plot}" if plot.is_file() else ""))
    return 0
