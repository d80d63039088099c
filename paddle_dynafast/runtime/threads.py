"""Paddle's CPU thread count, set for one block and put back after it.

``paddle.base.core.set_num_threads(n)`` changes process state: on Paddle's MKL
build (the CPU wheels) it sets MKL's thread count, for the whole process, and
OpenMP's, for the calling thread; Paddle has no function that reads either
back. :func:`paddle_threads` reads both from the libraries Paddle ships
(``paddle/libs/libmklml_intel.so`` and ``libiomp5.so``, the ones its kernels
call), sets ``n`` through Paddle, and puts both back in ``finally``. On a build
without those libraries (OpenBLAS on ARM, say) the counts cannot be read; the
block then ends by setting ``FLAGS_paddle_num_threads``, the count Paddle
itself set at start.

Two blocks in two threads at once still share MKL's count: whichever set it
last wins until it ends. The runtimes that use this run one batch at a time.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Tuple

import paddle


class ThreadCounts(NamedTuple):
    """What Paddle's ``set_num_threads`` sets."""

    mkl: int
    """MKL's count, process-wide (MKL caps it at the number of cores)."""
    openmp: int
    """OpenMP's count in the calling thread."""


@functools.lru_cache(maxsize=None)
def _libraries() -> Optional[Tuple[ctypes.CDLL, ctypes.CDLL]]:
    """MKL and OpenMP as Paddle loaded them (opening a loaded library again gives the same one), or None."""
    libs = Path(paddle.__file__).parent / "libs"
    try:
        return ctypes.CDLL(str(libs / "libmklml_intel.so")), ctypes.CDLL(str(libs / "libiomp5.so"))
    except OSError:
        return None


def current_threads() -> Optional[ThreadCounts]:
    """The counts Paddle's CPU kernels run with now, or None on a build whose libraries cannot say."""
    libraries = _libraries()
    if libraries is None:
        return None
    mkl, openmp = libraries
    return ThreadCounts(mkl.MKL_Get_Max_Threads(), openmp.omp_get_max_threads())


@contextlib.contextmanager
def paddle_threads(count: int) -> Iterator[None]:
    """Paddle's CPU kernels run with ``count`` threads inside the block; the counts before it are put back after it,
    also when it raises (see the module docstring)."""
    previous = current_threads()
    paddle.base.core.set_num_threads(count)
    try:
        yield
    finally:
        if previous is None:
            paddle.base.core.set_num_threads(paddle.get_flags(["FLAGS_paddle_num_threads"])["FLAGS_paddle_num_threads"])
        else:
            mkl, openmp = _libraries()
            mkl.MKL_Set_Num_Threads(previous.mkl)
            openmp.omp_set_num_threads(previous.openmp)
