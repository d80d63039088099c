"""The ``paddle-dynafast`` entry point: quiets the libraries' chatter a user cannot act on, then runs the command line.

Paddle warns at import that ccache is missing, setuptools that it replaces distutils, Paddle's static graph that a
tensor has no ``place`` while exporting, and Paddle's C++ side (glog) logs warnings of its own. Unless ``-v`` (or
``--verbose``) is given, those Python ``UserWarning``s are ignored and glog shows errors only
(``GLOG_minloglevel=2``, unless it is set already). Both must be in place before ``import paddle``, so this module
imports nothing heavy before it has set them.

PaddleNLP creates its home at import: in a container whose home directory is read-only, every command would stop
there. :func:`writable_homes` moves what the libraries write under the home directory to a place that can be
written first, when it has to.

On an AMD CPU with AVX2 it also sets ``MKL_DEBUG_CPU_TYPE=5`` unless it is set already (:func:`mkl_avx2_on_amd`), and
logs that once: the MKL that Paddle ships (mklml, MKL 2019.0.5) picks its code path by CPU vendor and gives AMD its
slow generic path unless told otherwise; Paddle's native kernels (dygraph, Paddle Inference without oneDNN) run their
matrix products on it. The library itself never sets it (importing ``paddle_dynafast`` changes nothing).
"""
from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
import warnings
from typing import List, Optional

from .mkl import mkl_avx2_on_amd

QUIET_MODULES = r"(paddle|paddlenlp|paddleslim|_distutils_hack)(\.|$)"
"""The modules whose ``UserWarning``s are ignored without ``-v``."""


PADDLENLP_FOLDERS = ("models", "datasets", "packages")
"""What PaddleNLP 2.8.1 creates in its home when it is imported (``paddlenlp/utils/env.py``, ``_get_sub_home``), with
``os.makedirs``: an ``OSError`` there stops the import."""


def _can_make(path: str) -> bool:
    """``path`` is a directory that can be written, or can be made: its nearest existing ancestor can be written
    (``os.access`` also says ``EROFS`` on a read-only file system, for root too). Nothing is created."""
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def home_folders() -> List[tuple]:
    """``(variable, default, usable)`` of each folder under the home directory that a command's libraries write:
    the environment variable that moves it, where it is without one, and whether that default can be used."""
    home = os.path.expanduser("~")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    paddlenlp = os.path.join(home, ".paddlenlp")
    return [("PPNLP_HOME", paddlenlp, _paddlenlp_can_start(paddlenlp)),  # PaddleNLP's import fails without it
            ("MPLCONFIGDIR", os.path.join(config, "matplotlib"), None),  # matplotlib warns, rebuilds its font cache
            ("PADDLE_DYNAFAST_CACHE", os.path.join(cache, "paddle_dynafast"), None)]  # runtime auto's choices


def _paddlenlp_can_start(home: str) -> bool:
    """PaddleNLP's import will find or make its folders in ``home``."""
    return all(os.path.isdir(os.path.join(home, folder)) for folder in PADDLENLP_FOLDERS) or _can_make(home)


def writable_homes() -> Optional[str]:
    """Point the libraries' home folders (:func:`home_folders`) that cannot be written at ``paddle-dynafast-UID``
    in the temporary directory (made private to the user; refused if it is a link or someone else's): in a
    container with a read-only home, PaddleNLP's import would fail and every command with it. A variable the user
    set is kept; a ``PPNLP_HOME`` that cannot be made is said. Returns what stops a command (one line), or None."""
    given = os.environ.get("PPNLP_HOME")
    if given and not _paddlenlp_can_start(given):
        return f"PPNLP_HOME={given} cannot be written: set PPNLP_HOME to a directory you can write"
    moved = [(variable, default) for variable, default, usable in home_folders()
             if not os.environ.get(variable) and not (usable if usable is not None else _can_make(default))]
    if not moved:
        return None
    root = os.path.join(tempfile.gettempdir(), f"paddle-dynafast-{os.getuid()}")
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        info = os.lstat(root)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise PermissionError(f"{root} is not a directory of this user's")
    except OSError as error:
        variable, default = moved[0]
        return f"{default} cannot be written, nor {root} ({error}): set {variable} to a directory you can write"
    for variable, default in moved:
        os.environ[variable] = os.path.join(root, os.path.basename(default).lstrip("."))
    return None


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not {"-v", "--verbose"} & set(args):
        warnings.filterwarnings("ignore", category=UserWarning, module=QUIET_MODULES)
        os.environ.setdefault("GLOG_minloglevel", "2")
    mkl = mkl_avx2_on_amd()
    problem = writable_homes()
    if problem is not None:
        print(f"paddle-dynafast: error: {problem}", file=sys.stderr)
        return 2
    from .cli import main as run  # imports paddle
    from .cli.log import command_logging

    if mkl:  # once per process: the variable is set from now on
        with command_logging(logging.INFO):
            logging.getLogger(__name__).info(mkl)
    return run(argv)
