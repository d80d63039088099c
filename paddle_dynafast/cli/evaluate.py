"""``paddle-dynafast evaluate``: accuracy x FLOPs x exit layer of a model with branches over widths and speeds
(:func:`paddle_dynafast.analysis.evaluate.run_evaluation`).

Example::

    paddle-dynafast evaluate --model runs/dynafast --data-dir ../shared/data/sst2 --split test --output runs/evaluation
"""
from __future__ import annotations

import argparse

from ..analysis.evaluate import markdown_table, run_evaluation
from ..config import BootstrapConfig, EvaluateConfig, default
from ..data.readers import SPLITS
from .common import add_measure_args, trained_data_config


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="accuracy x FLOPs x exit layer over widths and speeds",
                              epilog="example: paddle-dynafast evaluate --model runs/dynafast --data-dir "
                                     "../shared/data/sst2 --split test --output runs/evaluation")
    add_measure_args(p, EvaluateConfig)
    split = default(EvaluateConfig, "split")
    p.add_argument("--split", choices=SPLITS, default=split, help=f"split to measure (default {split})")
    p.add_argument("--widths", type=float, nargs="+", default=None, help="widths (default: all the model has)")
    p.add_argument("--speeds", type=float, nargs="+", default=None, help="speeds (default 0, 0.05, ..., 1)")
    patience = default(EvaluateConfig, "patience")
    p.add_argument("--patience", type=int, nargs="*", default=list(patience),
                   help="PABEE patiences compared with the entropy exits at equal FLOPs (NumPy only; none given: "
                        f"skipped; default {' '.join(map(str, patience))})")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    speeds = {"speeds": tuple(args.speeds)} if args.speeds else {}
    return EvaluateConfig(model_dir=args.model, output_dir=args.output, data=trained_data_config(args),
                          split=args.split, widths=tuple(args.widths) if args.widths else None,
                          patience=tuple(args.patience), batch_size=args.batch_size,
                          bootstrap=BootstrapConfig(samples=args.bootstrap_samples), **speeds)


def run(args: argparse.Namespace) -> int:
    result = run_evaluation(config_from_args(args), overwrite=args.overwrite, trust_pickle=args.trust_pickle)
    print(markdown_table(result.points), end="")
    print(f"-> {args.output}/evaluation.{{json,md,png}}")
    return 0
