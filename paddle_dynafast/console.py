"""The ``paddle-dynafast`` entry point: quiets the libraries' chatter a user cannot act on, then runs the command line.

Paddle warns at import that ccache is missing, setuptools that it replaces distutils, Paddle's static graph that a
tensor has no ``place`` while exporting, and Paddle's C++ side (glog) logs warnings of its own. Unless ``-v`` (or
``--verbose``) is given, those Python ``UserWarning``s are ignored and glog shows errors only
(``GLOG_minloglevel=2``, unless it is set already). Both must be in place before ``import paddle``, so this module
imports nothing heavy before it has set them.

On an AMD CPU with AVX2 it also sets ``MKL_DEBUG_CPU_TYPE=5`` unless it is set already (:func:`mkl_avx2_on_amd`), and
logs that once: the MKL that Paddle ships (mklml, MKL 2019.0.5) picks its code path by CPU vendor and gives AMD its
slow generic path unless told otherwise; Paddle's native kernels (dygraph, Paddle Inference without oneDNN) run their
matrix products on it. The library itself never sets it (importing ``paddle_dynafast`` changes nothing).
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

QUIET_MODULES = r"(paddle|paddlenlp|paddleslim|_distutils_hack)(\.|$)"
"""The modules whose ``UserWarning``s are ignored without ``-v``."""


MKL_CPU_TYPE = "MKL_DEBUG_CPU_TYPE"
"""MKL's (up to 2020.0) override of its CPU dispatch; ``5`` is its AVX2 code path."""


def mkl_avx2_on_amd(cpuinfo: Path = Path("/proc/cpuinfo")) -> Optional[str]:
    """Set ``MKL_DEBUG_CPU_TYPE=5`` if the CPU of ``cpuinfo`` is an AMD one with AVX2 and FMA and the variable is
    unset; returns what it did (a line to log), or None when it changed nothing.

    MKL 2019 dispatches on the vendor string, not on the CPU's features: on AMD it runs its generic SSE code, and a
    [2048, 384] x [384, 1536] matrix product in Paddle dygraph took 182 ms instead of 56 ms on an AMD EPYC Milan
    (``benchmarks/mkl_amd.py`` measures it). AVX2 is required because the
    variable forces the AVX2 path whether the CPU has it or not; MKL 2020.1 and later ignore the variable (and
    no longer need it). Must run before Paddle (and so MKL) is loaded.
    """
    if MKL_CPU_TYPE in os.environ:
        return None
    try:
        text = cpuinfo.read_text()
    except OSError:  # not Linux, or no /proc: nothing known, nothing set
        return None
    first = text.split("\n\n", 1)[0]  # the first processor's block
    fields = {key.strip(): value for key, value in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    vendor = fields.get("vendor_id", "").strip()
    flags = set(fields.get("flags", "").split())
    if vendor != "AuthenticAMD" or not {"avx2", "fma"} <= flags:
        return None
    os.environ[MKL_CPU_TYPE] = "5"
    return (f"{MKL_CPU_TYPE}=5: MKL takes its AVX2 path on this AMD CPU (Paddle's native kernels); set "
            f"{MKL_CPU_TYPE} yourself to choose otherwise")


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not {"-v", "--verbose"} & set(args):
        warnings.filterwarnings("ignore", category=UserWarning, module=QUIET_MODULES)
        os.environ.setdefault("GLOG_minloglevel", "2")
    mkl = mkl_avx2_on_amd()
    from .cli import main as run  # imports paddle
    from .cli.log import command_logging

    if mkl:  # once per process: the variable is set from now on
        with command_logging(logging.INFO):
            logging.getLogger(__name__).info(mkl)
    return run(argv)
