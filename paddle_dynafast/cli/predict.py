"""``paddle-dynafast predict``: texts (or sentence pairs) classified by an exported model, one JSON line each
(label, probabilities, exit layer), and a summary line on stderr: how many texts, the mean exit layer, how many
were truncated and, with gold labels, the accuracy.

Example::

    paddle-dynafast predict --model runs/export-w0.5 --speed 0.3 --input texts.txt
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import outputs
from ..config import PredictConfig, default
from ..data.readers import read_inputs
from ..errors import DataError
from ..runtime.auto import open_configured
from ..runtime.predictor import Predictor
from .common import add_runtime_args, runtime_config
from .log import logger


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="classify texts with an exported model (JSON lines out)",
                              epilog="example: paddle-dynafast predict --model runs/export-w0.5 --speed 0.3 "
                                     "--input texts.txt")
    p.add_argument("--model", required=True, help="an export directory")
    p.add_argument("--input", default=None, help="one text per line (default: standard input); a .tsv (text_b for "
                                                  "sentence pairs), a .jsonl or --labeled LABEL TEXT lines also work "
                                                  "(with labels, accuracy is reported)")
    p.add_argument("--labeled", action="store_true", help="the input is LABEL TEXT lines")
    p.add_argument("--jsonl", action="store_true",
                   help='the input is JSON lines {"text": ..., "text_b": ... (pairs), "label": ... (optional)}')
    p.add_argument("--output", default=None, help="write JSON lines here (default: standard output)")
    speed, batch = default(PredictConfig, "speed"), default(PredictConfig, "batch_size")
    p.add_argument("--speed", type=float, default=speed,
                   help=f"exit threshold in [0, 1] (default {speed:g}: no early exit)")
    p.add_argument("--batch-size", type=int, default=batch, help=f"texts per batch (default {batch})")
    add_runtime_args(p, default(PredictConfig, "runtime"))
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> PredictConfig:
    return PredictConfig(model_dir=args.model, input_file=args.input, labeled=args.labeled, jsonl=args.jsonl,
                         output_file=args.output, speed=args.speed, batch_size=args.batch_size,
                         runtime=runtime_config(args))


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config.output_file and config.input_file:
        outputs.check_not_input(Path(config.output_file), [config.input_file], "predict", whole=False)
    examples = read_inputs(config.input_file, config.labeled, config.jsonl)
    texts, gold = [e.text_a for e in examples], [e.label for e in examples]
    pairs = [e.text_b for e in examples] if examples[0].text_b is not None else None
    predictor = Predictor(open_configured(config.model_dir, config.runtime))
    labeled = all(g is not None for g in gold)
    if labeled:
        unknown = next((e for e in examples if e.label not in predictor.labels), None)
        if unknown is not None:
            raise DataError(f"{unknown.where}: label {unknown.label!r} is not one of the labels {predictor.labels} of "
                            f"{config.model_dir}; accuracy against it would be meaningless")
    if config.speed and not predictor.info.exit_loop:
        logger.warning("--speed %g has no effect: %s was exported without the exit loop, every text runs all %d "
                       "layers", config.speed, config.model_dir, predictor.info.num_layers)
    result = predictor.predict(texts, speed=config.speed, batch_size=config.batch_size, text_b=pairs)
    out = open(config.output_file, "w", encoding="utf-8") if config.output_file else sys.stdout
    try:
        for label, probs, layer in zip(result.labels, result.probs, result.exit_layer):
            out.write(json.dumps({"label": label, "probs": [round(float(p), 6) for p in probs],
                                  "exit_layer": int(layer)}) + "\n")
    finally:
        if config.output_file:
            out.close()
    summary = (f"{len(texts)} {'pairs' if pairs else 'texts'}, mean exit layer {result.exit_layer.mean():.2f}, "
               f"{result.truncated} truncated")
    if labeled:
        summary += f", accuracy {100 * sum(p == g for p, g in zip(result.labels, gold)) / len(gold):.2f}"
    logger.info(summary)
    return 0

