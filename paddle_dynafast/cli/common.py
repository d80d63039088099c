"""The argument groups several commands share, and the configs they build from them.

Every default comes from a config dataclass (:func:`paddle_dynafast.config.default`), so none is written twice.
"""
from __future__ import annotations

import argparse
import enum
from typing import Iterable, List, Optional

from ..config import (MEASURE, BootstrapConfig, CalibrateConfig, DataConfig, ExportConfig, Precision,
                      RuntimeConfig, RuntimeName, all_cores, default)
from ..model.stage_info import StageInfo


def names(members: Iterable[enum.Enum]) -> List[str]:
    """The strings of ``members`` (of :class:`RuntimeName` or :class:`Precision`): the ``choices`` of a flag."""
    return [member.value for member in members]


def add_output_args(parser: argparse.ArgumentParser, overwrite: bool = False) -> None:
    """``--output`` and ``--threads`` (Paddle's operators), and with ``overwrite`` ``--overwrite``."""
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--threads", type=int, default=all_cores(),
                        help="CPU threads for Paddle's operators (default: all cores; Paddle's own default is 1)")
    if overwrite:
        add_overwrite_arg(parser)


def add_overwrite_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace this command's earlier output in --output (a directory it did not write is "
                             "never replaced)")


def add_trust_pickle_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read pickled weights (model_state.pdparams, branches.pdparams, an old checkpoint): "
                             "loading a pickle runs any code it carries, so only for files you trust")


def add_sign_key_arg(parser: argparse.ArgumentParser, action: str) -> None:
    """``--sign-key-file``; ``action`` says what the key does to the manifest (``sign``, ``check the signature of``)."""
    parser.add_argument("--sign-key-file", default=None,
                        help=f"{action} manifest.json with an HMAC-SHA256 of this file's secret (at least 16 bytes), "
                             "against deliberate edits of the export")


def add_int8_float_products_arg(parser, when: str) -> None:
    """``--int8-float-products N`` (:attr:`~paddle_dynafast.config.ExportConfig.int8_float_products`)."""
    count = default(ExportConfig, "int8_float_products")
    parser.add_argument("--int8-float-products", type=int, default=count, metavar="N",
                        help=f"{when}: the N backbone products whose int8 moves the probabilities most (a sweep "
                             f"on training texts, no labels) stay float32; 0: all int8 (default {count})")


def add_data_args(parser: argparse.ArgumentParser, trained: bool = False) -> None:
    """``--data-dir`` and the flags of :class:`DataConfig`; ``trained``: the defaults are the model's own."""
    parser.add_argument("--data-dir", required=True, help="folder with train/dev/test (.txt LABEL TEXT or .tsv)")
    max_seq_len = default(DataConfig, "max_seq_len")
    parser.add_argument("--max-seq-len", type=int, default=None if trained else max_seq_len,
                        help="tokens per example (default: " + ("the one the model was trained with)" if trained
                                                                else f"{max_seq_len})"))
    parser.add_argument("--max-examples", type=int, default=None, help="use the first N examples of each split")
    add_output_args(parser)
    add_trust_pickle_arg(parser)
    if not trained:
        parser.add_argument("--labels", nargs="+", default=None,
                            help="the label set in the classifier's order (default: the training split's, refusing "
                                 "a rare label or a non-integer among integers as a likely typo)")
        parser.add_argument("--holdout", type=int, default=default(DataConfig, "holdout"),
                            help="training examples kept out of training and added to dev to calibrate with "
                                 "(default 0: none)")
    if trained:
        parser.add_argument("--seed", type=int, default=None,
                            help="seed of the dev slice held out of a folder without dev (default: the model's)")


def data_config(args: argparse.Namespace) -> DataConfig:
    """The :class:`DataConfig` of :func:`add_data_args` (a training command's)."""
    return DataConfig(data_dir=args.data_dir, max_seq_len=args.max_seq_len, max_examples=args.max_examples,
                      split_seed=args.seed, labels=tuple(args.labels) if args.labels else None,
                      holdout=args.holdout)


def trained_data_config(args: argparse.Namespace) -> DataConfig:
    """The data config of a command on a trained model (``--model``): the model's max_seq_len and split seed unless
    given."""
    changes = {"max_examples": args.max_examples}
    if args.max_seq_len is not None:
        changes["max_seq_len"] = args.max_seq_len
    if args.seed is not None:
        changes["split_seed"] = args.seed
    return StageInfo.read(args.model).data_config(args.data_dir, **changes)


def add_measure_args(parser: argparse.ArgumentParser, config_class: type) -> None:
    """The flags of the commands that measure a model with branches (evaluate, calibrate), with the batch size of
    ``config_class``."""
    add_data_args(parser, trained=True)
    add_overwrite_arg(parser)
    parser.add_argument("--model", required=True, help="a distill output directory (a model with branches)")
    batch = default(config_class, "batch_size")
    parser.add_argument("--batch-size", type=int, default=batch, help=f"examples per forward pass (default {batch})")
    samples = default(BootstrapConfig, "samples")
    parser.add_argument("--bootstrap-samples", type=int, default=samples,
                        help=f"paired-bootstrap resamples behind every interval (default {samples})")


def confidence(text: str) -> Optional[float]:
    """``--confidence``: a probability, or ``none`` for the raw dev drop."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability or 'none'") from None


def add_budget_args(parser: argparse.ArgumentParser) -> None:
    """The accuracy and FLOPs budgets of calibration (calibrate, pipeline)."""
    drop, speedup = default(CalibrateConfig, "max_accuracy_drop"), default(CalibrateConfig, "min_flops_speedup")
    parser.add_argument("--max-accuracy-drop", type=float, default=drop,
                        help=f"points of dev accuracy allowed below the full model (default {drop})")
    level = default(CalibrateConfig, "confidence")
    parser.add_argument("--confidence", type=confidence, default=level,
                        help="probability with which the chosen point's dev drop stays within --max-accuracy-drop "
                             "under the paired bootstrap (its promised drop); 'none' takes the raw dev drop "
                             f"(default {level})")
    parser.add_argument("--min-flops-speedup", type=float, default=speedup,
                        help=f"reverse budget: best accuracy with at least this FLOPs speed-up (default {speedup:g})")


def add_runtime_args(parser: argparse.ArgumentParser, defaults: RuntimeConfig) -> None:
    """The flags of :class:`RuntimeConfig` (predict, serve, bench), with the command's ``defaults``."""
    parser.add_argument("--runtime", choices=names(RuntimeName), default=defaults.name.value,
                        help="what runs the exported model; auto (default): the fastest here for this export and "
                             "precision, measured once and remembered (README, Performance)")
    threads = defaults.threads
    parser.add_argument("--threads", type=int, default=threads, help=f"CPU threads (default {threads})")
    parser.add_argument("--no-onednn", action="store_true", help="Paddle Inference: plain CPU kernels, not oneDNN")
    parser.add_argument("--native-below", type=native_below, default=defaults.native_below, metavar="N|auto",
                        help="Paddle Inference with oneDNN, fp32: batches of fewer than N texts on the plain kernels, "
                             "where oneDNN's cost per operator does not pay; auto: N measured here once and "
                             "remembered (runtime auto does that when it picks oneDNN; default "
                             f"{defaults.native_below}: never)")
    parser.add_argument("--precision", choices=names(Precision), default=defaults.precision.value,
                        help="fp32; bf16: Paddle Inference with oneDNN's bfloat16 kernels; int8: ONNX Runtime on "
                             "model.int8.onnx (export --int8)")
    add_sign_key_arg(parser, "check the signature of")
    add_trust_pickle_arg(parser)


def native_below(text: str):
    """``--native-below``: a whole number, or ``auto`` (measured)."""
    if text == MEASURE:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or {MEASURE!r}") from None


def runtime_config(args: argparse.Namespace) -> RuntimeConfig:
    """The :class:`RuntimeConfig` of :func:`add_runtime_args`."""
    return RuntimeConfig(name=args.runtime, threads=args.threads, precision=args.precision, onednn=not args.no_onednn,
                         native_below=args.native_below, sign_key_file=args.sign_key_file,
                         trust_pickle=args.trust_pickle)
