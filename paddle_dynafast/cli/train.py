"""The training sub-commands, one per stage of :data:`paddle_dynafast.train.STAGES` (finetune, supernet, distill):
the flags every stage shares (data, schedule, resuming, distributed time-out) with the stage's own defaults, then
the stage's own flags (``Stage.add_arguments``); the run builds the stage's config (``Stage.config_from_args``),
runs or resumes the stage and prints its summary.

Example::

    paddle-dynafast finetune --model MODEL_DIR --data-dir ../shared/data/sst2 --output runs/teacher --epochs 3
"""
from __future__ import annotations

import argparse
import math

from ..config import TrainConfig, default
from ..train import STAGES
from .common import add_data_args, data_config


def register(subparsers) -> None:
    """One sub-command per training stage."""
    for stage in STAGES:
        p = subparsers.add_parser(stage.name, help=stage.help, description=stage.description,
                                  epilog=f"example: {stage.example}")
        add_train_args(p, default(stage.config_class, "train"))
        stage.add_arguments(p)
        p.set_defaults(run=run, stage=stage)


def add_train_args(parser: argparse.ArgumentParser, train: TrainConfig) -> None:
    """The flags every training stage has, with the stage's own defaults ``train``."""
    add_data_args(parser)
    parser.add_argument("--batch-size", type=int, default=train.batch_size,
                        help=f"examples per step (default {train.batch_size})")
    parser.add_argument("--eval-batch-size", type=int, default=train.eval_batch_size,
                        help=f"examples per evaluation batch (default {train.eval_batch_size})")
    parser.add_argument("--epochs", type=int, default=train.epochs, help=f"passes over train (default {train.epochs})")
    parser.add_argument("--lr", type=float, default=train.lr, help=f"peak learning rate (default {train.lr})")
    parser.add_argument("--weight-decay", type=float, default=train.weight_decay,
                        help=f"AdamW weight decay (default {train.weight_decay})")
    parser.add_argument("--warmup-ratio", type=float, default=train.warmup_ratio,
                        help=f"share of steps warming up (default {train.warmup_ratio})")
    parser.add_argument("--seed", type=int, default=train.seed,
                        help=f"random seed, also of the dev slice of a folder without dev (default {train.seed})")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps (quick runs)")
    parser.add_argument("--logdir", default=None, help="write VisualDL scalars here")
    parser.add_argument("--restart", action="store_true",
                        help="remove this stage's own files from --output and start over instead of resuming (other "
                             "files are kept)")
    parser.add_argument("--dist-timeout", type=positive_seconds, default=None,
                        help="under paddle.distributed.launch: seconds before a rank that stopped answering is given "
                             "up (sets PADDLE_PG_TIMEOUT; Paddle's default is 1800)")


def positive_seconds(text: str) -> float:
    """``--dist-timeout``: a finite number of seconds > 0 (an argparse type: a bad value names the flag)."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of :func:`add_train_args`."""
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, seed=args.seed,
                       max_steps=args.max_steps)


def run(args: argparse.Namespace) -> int:
    stage = args.stage
    config = stage.config_from_args(args, data_config(args), train_config(args))
    print(stage.summary(stage(config, args.logdir, trust_pickle=args.trust_pickle).run(restart=args.restart)))
    return 0
