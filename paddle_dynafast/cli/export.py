"""``paddle-dynafast export``: one width of a distilled model as a Paddle Inference program with its batched exit
loop inside (and ONNX, and int8), or with ``--no-exit`` the plain classifier
(:func:`paddle_dynafast.runtime.export.export_model`).

Example::

    paddle-dynafast export --model runs/dynafast --width 0.5 --output runs/export-w0.5
"""
from __future__ import annotations

import argparse

from ..analysis.promise import export_calibrated, read_promise
from ..config import INT8_ACTIVATIONS, ExportConfig, default
from ..errors import ConfigError
from ..model.stage_info import StageInfo
from ..runtime.export import export_model
from .common import add_int8_float_products_arg, add_output_args, add_sign_key_arg, add_trust_pickle_arg


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a Paddle Inference model, exit loop inside",
        description="Export a width of a distilled model with its batched exit loop (speed is an input of the "
                    "program), or with --no-exit the plain fixed-width classifier.",
        epilog="example: paddle-dynafast export --model runs/dynafast --width 0.5 --output runs/export-w0.5")
    p.add_argument("--model", required=True, help="a distill directory (with --no-exit also finetune/supernet)")
    width = default(ExportConfig, "width")
    p.add_argument("--width", type=float, default=None,
                   help=f"width to export (default {width}, or the one --calibrated chose)")
    p.add_argument("--calibrated", metavar="DIR", default=None,
                   help="a calibrate output directory: export the point it chose, with the promise it made in "
                        "export.json (calibrated with --runtime: the very files it measured)")
    p.add_argument("--no-exit", action="store_true", help="export the plain classifier without branches")
    p.add_argument("--no-onnx", dest="onnx", action="store_false",
                   help="do not write model.onnx (paddle2onnx) beside the Paddle program (ONNX Runtime runs it)")
    p.add_argument("--int8", action="store_true",
                   help="also write model.int8.onnx: the matrix products in int8 (ONNX Runtime)")
    activations = default(ExportConfig, "int8_activations")
    p.add_argument("--int8-activations", choices=INT8_ACTIVATIONS, default=activations,
                   help=f"{activations} (default): every token's activations quantized over their own range at run "
                        "time, an answer independent of its batch; dynamic: over the whole batch's range (one scale "
                        "for the batch); static: over ranges calibrated on training texts")
    p.add_argument("--calibration-data", default=None,
                   help="with --int8: the data folder whose train split calibrates static activations and the "
                        "mixed-precision sweep "
                        "(default: the one the model was trained on)")
    examples = default(ExportConfig, "calibration_examples")
    p.add_argument("--calibration-examples", type=int, default=examples,
                   help=f"with --int8: training texts that calibrate static activations and the sweep "
                        f"(default {examples})")
    add_int8_float_products_arg(p, "with --int8")
    p.add_argument("--max-seq-len", type=int, default=None, help="default: the one the model was trained with")
    add_output_args(p, overwrite=True)
    add_trust_pickle_arg(p)
    add_sign_key_arg(p, "sign")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    """``--calibration-data`` is read as the model was trained to read data (its max_seq_len, labels, seed)."""
    calibration = None
    if args.calibration_data:
        calibration = StageInfo.read(args.model).data_config(args.calibration_data)
    width = default(ExportConfig, "width") if args.width is None else args.width
    return ExportConfig(model_dir=args.model, output_dir=args.output, width=width, no_exit=args.no_exit,
                        max_seq_len=args.max_seq_len, onnx=args.onnx, int8=args.int8,
                        int8_activations=args.int8_activations, calibration=calibration,
                        calibration_examples=args.calibration_examples, int8_float_products=args.int8_float_products,
                        sign_key_file=args.sign_key_file)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.calibrated is None:
        out = export_model(config, overwrite=args.overwrite, trust_pickle=args.trust_pickle)
        print(f"-> {out}")
        return 0
    if args.no_exit:
        raise ConfigError("--calibrated exports the point a calibration chose, with its exit loop; not with --no-exit")
    promise, _ = read_promise(args.calibrated)
    if args.width is not None and args.width != promise.width:
        raise ConfigError(f"--width {args.width:g}: {args.calibrated} chose width {promise.width:g}; give one or "
                          "the other")
    out, promise = export_calibrated(args.calibrated, config, overwrite=args.overwrite,
                                     trust_pickle=args.trust_pickle)
    print(f"{promise.summary()}\n-> {out}")
    return 0
