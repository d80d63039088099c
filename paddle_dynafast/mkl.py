"""MKL's CPU dispatch on AMD: the variable that picks its code path, set before Paddle loads MKL.

The MKL that Paddle ships (mklml, MKL 2019.0.5) picks its code path by CPU vendor and gives AMD its slow generic
path unless ``MKL_DEBUG_CPU_TYPE`` says otherwise; Paddle's native kernels (dygraph, Paddle Inference without oneDNN)
run their matrix products on it. The ``paddle-dynafast`` command sets it (:mod:`paddle_dynafast.console`); the
library never does, and remembers runtime measurements per value of it (:mod:`paddle_dynafast.runtime.choose`), since
the plain kernels' speed depends on it. Imports nothing heavy: it must run before ``import paddle``.
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Optional

MKL_CPU_TYPE = "MKL_DEBUG_CPU_TYPE"
"""MKL's (up to 2020.0) override of its CPU dispatch; ``5`` is its AVX2 code path."""


def on_generic_path(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether MKL would run its generic code where its AVX2 path could run: the CPU of ``cpuinfo`` is an AMD one
    with AVX2 and FMA and ``MKL_DEBUG_CPU_TYPE`` is unset.

    MKL 2019 dispatches on the vendor string, not on the CPU's features: on AMD it runs its generic SSE code, and a
    [2048, 384] x [384, 1536] matrix product in Paddle dygraph took 182 ms instead of 56 ms on an AMD EPYC Milan
    (``benchmarks/mkl_amd.py`` measures it). AVX2 is required because the variable forces the AVX2 path whether the
    CPU has it or not; MKL 2020.1 and later ignore the variable (and no longer need it).
    """
    if MKL_CPU_TYPE in os.environ:
        return False
    try:
        text = cpuinfo.read_text()
    except OSError:  # not Linux, or no /proc: nothing known
        return False
    first = text.split("\n\n", 1)[0]  # the first processor's block
    fields = {key.strip(): value for key, value in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    vendor = fields.get("vendor_id", "").strip()
    flags = set(fields.get("flags", "").split())
    return vendor == "AuthenticAMD" and {"avx2", "fma"} <= flags


def mkl_avx2_on_amd(cpuinfo: Path = Path("/proc/cpuinfo")) -> Optional[str]:
    """Set ``MKL_DEBUG_CPU_TYPE=5`` where MKL would otherwise run its generic code (:func:`on_generic_path`); returns
    what it did (a line to log), or None when it changed nothing. Must run before Paddle (and so MKL) is loaded."""
    if not on_generic_path(cpuinfo):
        return None
    os.environ[MKL_CPU_TYPE] = "5"
    return (f"{MKL_CPU_TYPE}=5: MKL takes its AVX2 path on this AMD CPU (Paddle's native kernels); set "
            f"{MKL_CPU_TYPE} yourself to choose otherwise")


@functools.lru_cache(maxsize=None)
def warn_generic_path() -> None:
    """Log once per process that Paddle's plain kernels run on MKL's generic code here (:func:`on_generic_path`):
    a Python program on an AMD CPU that did not set ``MKL_DEBUG_CPU_TYPE=5`` before ``import paddle``."""
    if on_generic_path():
        logging.getLogger(__name__).warning(
            "%s is not set on this AMD CPU: Paddle's plain kernels (Paddle Inference without oneDNN) run on MKL's "
            "generic code, about 3x slower; set %s=5 before Python starts (the paddle-dynafast command does)",
            MKL_CPU_TYPE, MKL_CPU_TYPE)
