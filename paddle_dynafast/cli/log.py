"""The command line's logging: paddle_dynafast's messages, and those of the libraries it shows, on stderr in one
format, one line per record, above any progress bar.

Only the command line sets logging up: importing the package and calling the library configure nothing.
:func:`command_logging` installs the handler on the package's own logger (``import paddle`` resets the root
level, so the package does not rely on it) and lends it to the :data:`FOREIGN_LOGGERS` for the length of a
command, giving them back their own handlers, levels and ``propagate`` flags afterwards.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from tqdm.auto import tqdm

logger = logging.getLogger("paddle_dynafast")
"""The package's logger: the commands log on it, so their lines carry the package's name."""

FOREIGN_LOGGERS = ("PaddleNLP", "uvicorn")
"""Libraries' loggers shown in our format, at WARNING (INFO with -v): PaddleNLP's coloured logger says "Loading
configuration file" and "Model weights saved" at every save and load; uvicorn says "Started server process"."""

FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


class StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream it was created with (which a
    notebook or a test's capture may have replaced and closed since), through ``tqdm.write``: a line logged while a
    progress bar is shown goes above the bar instead of into it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def package_handler() -> StderrHandler:
    """The :class:`StderrHandler` on the package's logger, installed by the first command of the process and kept
    (a line the package logs after a command, in a notebook, still reaches the stderr of the moment)."""
    handler = next((h for h in logger.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        handler.setFormatter(FORMAT)
        logger.addHandler(handler)
    return handler


@contextlib.contextmanager
def command_logging(level: int) -> Iterator[None]:
    """Inside: paddle_dynafast's messages from ``level`` up on stderr (:func:`package_handler`, the package's logger
    not propagating to the root's handlers), and the :data:`FOREIGN_LOGGERS` through the same handler, at WARNING
    (INFO when ``level`` is DEBUG). On the way out, however the command ended, each foreign logger has its own
    handlers, level and ``propagate`` flag back."""
    handler = package_handler()
    logger.setLevel(level)
    logger.propagate = False
    foreign = [logging.getLogger(name) for name in FOREIGN_LOGGERS]
    saved = [(f, list(f.handlers), f.level, f.propagate) for f in foreign]
    try:
        for f in foreign:
            f.handlers = [handler]  # PaddleNLP's own is a colorlog handler on the stderr of its import
            f.setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)
            f.propagate = False
        yield
    finally:
        for f, handlers, f_level, propagate in saved:
            f.handlers = handlers
            f.setLevel(f_level)
            f.propagate = propagate
