"""The ``paddle-dynafast`` entry point: quiets the libraries' chatter a user cannot act on, then runs the command line.

Paddle warns at import that ccache is missing, setuptools that it replaces distutils, Paddle's static graph that a
tensor has no ``place`` while exporting, and Paddle's C++ side (glog) logs warnings of its own. Unless ``-v`` (or
``--verbose``) is given, those Python ``UserWarning``s are ignored and glog shows errors only
(``GLOG_minloglevel=2``, unless it is set already). Both must be in place before ``import paddle``, so this module
imports nothing heavy before it has set them.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import List, Optional

QUIET_MODULES = r"(paddle|paddlenlp|paddleslim|_distutils_hack)(\.|$)"
"""The modules whose ``UserWarning``s are ignored without ``-v``."""


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not {"-v", "--verbose"} & set(args):
        warnings.filterwarnings("ignore", category=UserWarning, module=QUIET_MODULES)
        os.environ.setdefault("GLOG_minloglevel", "2")
    from .cli import main as run  # imports paddle

    return run(argv)
