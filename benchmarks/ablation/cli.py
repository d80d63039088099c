"""The command line of ``benchmarks/ablation.py`` (its docstring gives the commands): arguments, the setup, then the
steps of :mod:`ablation`."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional, Sequence

import paddle

from paddle_dynafast.config import BootstrapConfig
from paddle_dynafast.model.stage_info import StageInfo

from .adopt import adopt_baseline
from .levers import DEFAULT_LEVERS, combine, levers
from .measure import measure
from .paired import against_baseline
from .plan import plan
from .report import finished_rows, write_report
from .runs import Setup

DESCRIPTION = ("The accuracy levers of issue #13, each trained from one teacher with the same seeds and budget, "
               "measured on dev")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--teacher", required=True, help="a finetune stage directory (the teacher of every lever)")
    parser.add_argument("--data", required=True, help="the data folder the teacher was trained on")
    parser.add_argument("--output", required=True, help="the ablation directory")
    parser.add_argument("--levers", nargs="+", default=list(DEFAULT_LEVERS),
                        help=f"levers to run, 'a+b' combines (default: {' '.join(DEFAULT_LEVERS)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="training seeds (default 42)")
    parser.add_argument("--unlabeled", default=None, help="raw text for the supernet-unlabeled lever")
    parser.add_argument("--adopt-baseline", default=None, metavar="RUN",
                        help="a finished pipeline run (RUN/supernet, RUN/dynafast) made with the baseline's "
                             "configuration (the defaults, but distill --objective distill): copied as the baseline of "
                             "the seed it was trained with instead of training it again")
    parser.add_argument("--max-seq-len", type=int, default=None, help="default: the teacher's")
    parser.add_argument("--max-examples", type=int, default=None, help="the first N examples of each split")
    parser.add_argument("--bootstrap-samples", type=int, default=None, help="default 10000 (1000 with --quick)")
    parser.add_argument("--resplits", type=int, default=None,
                        help="random dev/test re-splits behind the promise check (default 50, 3 with --quick; 0: none)")
    parser.add_argument("--quick", action="store_true", help="160 examples per split, 3 steps per stage, coarse grids")
    parser.add_argument("--plan", action="store_true", help="print the runs and their estimated time, train nothing")
    parser.add_argument("--report", action="store_true",
                        help="write the tables from every (lever, seed) already measured in --output, by whichever "
                             "call, training nothing (--levers and --seeds are then ignored)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read pickled .pdparams weights of runs made by an earlier version (the teacher, an "
                             "adopted baseline); only for files you made yourself")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    paddle.base.core.set_num_threads(args.threads)  # a script of its own: the whole process trains with them
    table = levers(args.unlabeled)
    names = list(dict.fromkeys(["baseline", *args.levers]))  # the baseline is what every lever is compared with
    for name in names:
        combine(name, table)  # unknown names fail before any work
    changes = {"max_examples": args.max_examples or (160 if args.quick else None)}
    if args.max_seq_len:
        changes["max_seq_len"] = args.max_seq_len
    data = StageInfo.read(args.teacher).data_config(args.data, **changes)
    samples = args.bootstrap_samples or (1000 if args.quick else 10000)
    setup = Setup(teacher=args.teacher, data=data, output=Path(args.output), quick=args.quick,
                  bootstrap=BootstrapConfig(samples=samples), trust_pickle=args.trust_pickle)
    if args.adopt_baseline:
        adopted = adopt_baseline(setup, Path(args.adopt_baseline), args.seeds, table)
        print("adopted: " + ("; ".join(adopted) if adopted else f"nothing ({args.adopt_baseline} does not match the "
                                                                  "baseline of any seed, or it is already there)"))
    if args.plan:
        print("\n".join(plan(setup, names, args.seeds, table)))
        return
    speeds = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0) if args.quick else None
    calibrate_speeds = tuple(round(0.05 * i, 2) for i in range(21)) if args.quick else None
    repeats = args.resplits if args.resplits is not None else (3 if args.quick else 50)
    if args.report:
        rows = finished_rows(setup.output, table)
        if not rows:
            raise SystemExit(f"{setup.output}: no lever measured yet")
    else:
        rows = [measure(setup, name, seed, table, speeds, calibrate_speeds, repeats)
                for seed in args.seeds for name in names]
    against_baseline(rows, setup)
    report = write_report(setup.output, rows, data.data_dir, args.teacher, args.quick)
    print(f"-> {report}")
