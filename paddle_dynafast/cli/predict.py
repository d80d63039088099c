"""``paddle-dynafast predict``: texts (or sentence pairs) classified by an exported model, one JSON line each
(label, probabilities, exit layer), and a summary line on stderr: how many texts, the mean exit layer, how many
were truncated and, with gold labels, the accuracy.

The input streams through: :data:`CHUNK_BATCHES` batches of texts are read, tokenised and run at a time (grouped by
length within the chunk), and their lines written, in input order, before the next chunk is read. Memory stays
bounded whatever the input's length, results appear as they are made, and a progress bar on the terminal counts the
texts. An empty input gives no lines (and a log line saying so). ``--output`` is claimed like every command's output
(:func:`paddle_dynafast.outputs.claim_file`): never the input and never inside ``--model``, an existing file only
with ``--overwrite``, one writer at a time, and written atomically: the file appears whole when the command succeeds
and is left as it was when it fails. No line holds a number that is not finite (strict JSON).

Example::

    paddle-dynafast predict --model runs/export-w0.5 --speed 0.3 --input texts.txt
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, TextIO

import numpy as np
from tqdm.auto import tqdm

from .. import outputs
from ..config import PredictConfig, default
from ..data.readers import Example, iter_inputs
from ..errors import ArtifactError, DataError
from ..runtime.auto import open_configured
from ..runtime.predictor import Prediction, Predictor
from .common import add_runtime_args, runtime_config
from .log import logger

CHUNK_BATCHES = 64
"""Batches of texts read, tokenised and run at a time: what bounds the memory of a long input."""


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
    p.add_argument("--output", default=None, help="write JSON lines to this file, atomically (default: standard "
                                                   "output); an existing file only with --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    speed, batch = default(PredictConfig, "speed"), default(PredictConfig, "batch_size")
    p.add_argument("--speed", type=float, default=speed,
                   help="exit threshold in [0, 1] (default: the speed the export was calibrated at, 0 (no early "
                        "exit) for an export without a promise)")
    p.add_argument("--batch-size", type=int, default=batch, help=f"texts per batch (default {batch})")
    add_runtime_args(p, default(PredictConfig, "runtime"))
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> PredictConfig:
    return PredictConfig(model_dir=args.model, input_file=args.input, labeled=args.labeled, jsonl=args.jsonl,
                         output_file=args.output, speed=args.speed, batch_size=args.batch_size,
                         runtime=runtime_config(args), overwrite=args.overwrite)


@dataclass
class Tally:
    """What the summary line says, added up chunk by chunk."""

    texts: int = 0
    layers: int = 0
    """The sum of the exit layers."""
    truncated: int = 0
    labeled: int = 0
    correct: int = 0
    pairs: bool = False

    def add(self, chunk: Sequence[Example], result: Prediction) -> None:
        self.texts += len(chunk)
        self.layers += int(result.exit_layer.sum())
        self.truncated += result.truncated
        self.pairs = self.pairs or chunk[0].text_b is not None
        gold = [(e.label, p) for e, p in zip(chunk, result.labels) if e.label is not None]
        self.labeled += len(gold)
        self.correct += sum(g == p for g, p in gold)

    def summary(self) -> str:
        line = (f"{self.texts} {'pairs' if self.pairs else 'texts'}, mean exit layer {self.layers / self.texts:.2f}, "
                f"{self.truncated} truncated")
        if self.labeled == self.texts:
            line += f", accuracy {100 * self.correct / self.texts:.2f}"
        return line


def chunks(examples: Iterable[Example], size: int) -> Iterator[List[Example]]:
    """``examples`` in lists of ``size`` (the last may be shorter), each read only when it is asked for."""
    examples = iter(examples)
    while True:
        chunk = list(itertools.islice(examples, size))
        if not chunk:
            return
        yield chunk


def json_lines(chunk: Sequence[Example], result: Prediction) -> str:
    """One JSON line per text; a probability that is not finite is an error naming the text, never printed."""
    if not np.isfinite(result.probs).all():
        bad = chunk[int(np.flatnonzero(~np.isfinite(result.probs).all(-1))[0])]
        raise ArtifactError(f"{bad.where}: the model gave probabilities that are not finite (NaN or infinity): its "
                            "weights are damaged")
    return "".join(json.dumps({"label": label, "probs": [round(float(p), 6) for p in probs],
                               "exit_layer": int(layer)}, allow_nan=False) + "\n"
                   for label, probs, layer in zip(result.labels, result.probs, result.exit_layer))


def predict_stream(predictor: Predictor, examples: Iterable[Example], out: TextIO, speed: float = 0.0,
                   batch_size: int = 32, bar: Optional[tqdm] = None) -> Tally:
    """Classify ``examples`` a chunk of :data:`CHUNK_BATCHES` batches at a time, writing each chunk's JSON lines to
    ``out`` (in input order) before the next chunk is read; ``bar`` counts the texts."""
    tally = Tally()
    for chunk in chunks(examples, batch_size * CHUNK_BATCHES):
        unknown = next((e for e in chunk if e.label is not None and e.label not in predictor.labels), None)
        if unknown is not None:
            raise DataError(f"{unknown.where}: label {unknown.label!r} is not one of the labels {predictor.labels} of "
                            f"{predictor.info.directory}; accuracy against it would be meaningless")
        pairs = [e.text_b for e in chunk] if chunk[0].text_b is not None else None
        result = predictor.predict([e.text_a for e in chunk], speed=speed, batch_size=batch_size, text_b=pairs)
        out.write(json_lines(chunk, result))
        out.flush()
        tally.add(chunk, result)
        if bar is not None:
            bar.update(len(chunk))
    return tally


def count_lines(path: Optional[str]) -> Optional[int]:
    """The texts a progress bar expects from ``path`` (its lines, less a .tsv's header); None for standard input."""
    if path is None or not Path(path).is_file():
        return None
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return max(0, lines - 1) if path.endswith(".tsv") else lines


def progress_bar(config: PredictConfig) -> tqdm:
    """The progress bar of the texts, on stderr when it is a terminal (not when the JSON lines go to the same
    terminal)."""
    shown = sys.stderr.isatty() and (config.output_file is not None or not sys.stdout.isatty())
    return tqdm(total=count_lines(config.input_file), desc="predict", unit="text", dynamic_ncols=True,
                disable=not shown, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with contextlib.ExitStack() as scope:
        if config.output_file:  # claimed first: an output refused is said before the model is opened
            out = scope.enter_context(outputs.claim_file(config.output_file, "predict", [config.input_file],
                                                         [config.model_dir], replace=config.overwrite))
        else:
            out = sys.stdout
        predictor = Predictor(open_configured(config.model_dir, config.runtime))
        speed = config.speed
        if speed is None:
            speed = predictor.info.default_speed
            if predictor.info.promise is not None:
                logger.info("speed %g: the one %s was calibrated at (%s)", speed, config.model_dir,
                            predictor.info.promise.summary())
        elif speed and not predictor.info.exit_loop:
            logger.warning("--speed %g has no effect: %s was exported without the exit loop, every text runs all %d "
                           "layers", speed, config.model_dir, predictor.info.num_layers)
        bar = scope.enter_context(progress_bar(config))
        examples = iter_inputs(config.input_file, config.labeled, config.jsonl)
        tally = predict_stream(predictor, examples, out, speed, config.batch_size, bar)
    if tally.texts == 0:
        logger.info("no texts in %s: nothing to predict, 0 lines written%s", config.input_file or "standard input",
                    f" to {config.output_file}" if config.output_file else "")
    else:
        logger.info(tally.summary())
    return 0
