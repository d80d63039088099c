"""``paddle-dynafast calibrate``: choose (width, speed) on dev for an accuracy or FLOPs budget
(:func:`paddle_dynafast.analysis.calibrate.run_calibration`), or with ``--runtime`` by time measured on that
runtime and precision (:func:`paddle_dynafast.analysis.timed.run_timed_calibration`).

Example::

    paddle-dynafast calibrate --model runs/dynafast --data-dir ../shared/data/sst2 --max-accuracy-drop 0.5 \\
        --output runs/calibration
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.calibrate import run_calibration
from ..analysis.timed import run_timed_calibration
from ..config import (EXPORT_RUNTIMES, BootstrapConfig, CalibrateConfig, Precision, RuntimeName,
                      TimedCalibrateConfig, default)
from ..errors import ConfigError
from .common import add_budget_args, add_int8_float_products_arg, add_measure_args, names, trained_data_config


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="choose (width, speed) on dev for an accuracy or FLOPs budget",
                              epilog="example: paddle-dynafast calibrate --model runs/dynafast --data-dir "
                                     "../shared/data/sst2 --max-accuracy-drop 0.5 --output runs/calibration")
    add_measure_args(p, CalibrateConfig)
    add_budget_args(p)
    p.add_argument("--teacher", default=None,
                   help="the model before compression, which the accuracy budget is measured against (default: the "
                        "teacher --model descends from, found through its stage.json)")
    p.add_argument("--resplits", type=int, default=default(CalibrateConfig, "resplits"),
                   help="also re-split dev+test at random N times and report how often the budget held on the part "
                        "not chosen on (NumPy only; default 0: skipped)")
    timed = p.add_argument_group("on measured time (--runtime)", "choose on wall-clock time: every width exported "
                                 "and run on dev at a grid of speeds on this runtime and precision (minutes)")
    timed.add_argument("--runtime", choices=names(EXPORT_RUNTIMES), default=None,
                       help="measure on this runtime instead of choosing on FLOPs")
    precision = default(TimedCalibrateConfig, "precision")
    timed.add_argument("--precision", choices=names(Precision), default=precision,
                       help=f"with --runtime: int8 on onnxruntime, bf16 on paddle-inference (default {precision})")
    timed.add_argument("--min-throughput-speedup", type=float, default=None,
                       help="with --runtime: the most accurate point with at least this throughput speed-up at batch "
                            "32 over the teacher in fp32 on the reference runtime")
    timed.add_argument("--max-latency-ms", type=float, default=None,
                       help="with --runtime: ... and/or at most this median latency at batch 1")
    timed.add_argument("--reference-runtime", default=default(TimedCalibrateConfig, "reference_runtime"),
                       choices=names((RuntimeName.AUTO,) + EXPORT_RUNTIMES),
                       help="where the teacher is timed in fp32 (default auto: the fastest here)")
    add_int8_float_products_arg(timed, "with --precision int8")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> CalibrateConfig:
    """The calibration on FLOPs (no ``--runtime``)."""
    if args.min_throughput_speedup is not None or args.max_latency_ms is not None:
        raise ConfigError("--min-throughput-speedup and --max-latency-ms need --runtime (the runtime to time)")
    return CalibrateConfig(model_dir=args.model, output_dir=args.output, data=trained_data_config(args),
                           max_accuracy_drop=args.max_accuracy_drop, min_flops_speedup=args.min_flops_speedup,
                           confidence=args.confidence, batch_size=args.batch_size, teacher_dir=args.teacher,
                           bootstrap=BootstrapConfig(samples=args.bootstrap_samples), resplits=args.resplits)


def timed_config_from_args(args: argparse.Namespace) -> TimedCalibrateConfig:
    """The calibration on time measured on ``--runtime``."""
    return TimedCalibrateConfig(model_dir=args.model, output_dir=args.output, data=trained_data_config(args),
                                runtime=args.runtime, precision=args.precision, threads=args.threads,
                                reference_runtime=args.reference_runtime, max_accuracy_drop=args.max_accuracy_drop,
                                confidence=args.confidence, bootstrap=BootstrapConfig(samples=args.bootstrap_samples),
                                min_throughput_speedup=args.min_throughput_speedup,
                                max_latency_ms=args.max_latency_ms, teacher_dir=args.teacher,
                                int8_float_products=args.int8_float_products)


def run(args: argparse.Namespace) -> int:
    if args.runtime is not None:
        run_timed_calibration(timed_config_from_args(args), overwrite=args.overwrite, trust_pickle=args.trust_pickle)
        report = "timed"
    else:
        run_calibration(config_from_args(args), overwrite=args.overwrite, trust_pickle=args.trust_pickle)
        report = "calibration"
    print((Path(args.output) / f"{report}.md").read_text(encoding="utf-8"), end="")
    print(f"-> {args.output}/{report}.{{json,md}}")
    return 0
