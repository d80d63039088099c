"""Data parallelism on ``paddle.distributed``, as PaddleNLP's Trainer does it.

Every training stage runs unchanged under ``python -m paddle.distributed.launch
--nproc_per_node N ...`` or ``paddle.distributed.spawn``: :func:`setup` calls
``init_parallel_env`` when there is more than one process; the trained layer is
wrapped in ``paddle.DataParallel`` (:func:`data_parallel`); each global batch is
split evenly across the ranks (:class:`paddle_dynafast.data.LengthGroupedBatchSampler`
is a ``DistributedBatchSampler``), so N processes with ``batch_size / N``
examples each take the same steps as one process with the whole batch;
evaluation is sharded and gathered (:func:`gather`); rank 0 alone writes
checkpoints, logs and outputs. With one process every function here is a no-op.

A peer that dies closes its connections and the others fail at once; a peer
that hangs is given up after ``PADDLE_PG_TIMEOUT`` milliseconds (set by
:func:`peer_timeout`, from ``--dist-timeout``; Paddle's default is 30 minutes).
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist


def world_size() -> int:
    """Processes launched (from the launcher's environment, so it is right before ``init_parallel_env`` too:
    ``dist.get_world_size()`` says 1 until then)."""
    return dist.ParallelEnv().world_size


def rank() -> int:
    return dist.ParallelEnv().rank


def is_main() -> bool:
    return rank() == 0


PG_TIMEOUT = "PADDLE_PG_TIMEOUT"
"""The environment variable ``init_parallel_env`` reads: milliseconds before a silent peer is given up."""


@contextlib.contextmanager
def peer_timeout(seconds: Optional[float]) -> Iterator[None]:
    """Inside, :data:`PG_TIMEOUT` says ``seconds`` (None: left as it is), for the process group :func:`setup`
    starts there; on the way out the environment is as it was."""
    if seconds is None:
        yield
        return
    before = os.environ.get(PG_TIMEOUT)
    os.environ[PG_TIMEOUT] = str(int(seconds * 1000))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PG_TIMEOUT, None)
        else:
            os.environ[PG_TIMEOUT] = before


def setup() -> None:
    """``init_parallel_env`` once, when launched with more than one process.

    The rendezvous store is Paddle's socket ``TCPStore``, not the libuv one that Paddle 3 uses by default
    (unless ``FLAGS_tcp_store_using_libuv`` is set in the environment). Rank 0 hosts the store; when another
    rank disconnects while rank 0 is already running its exit handlers, the libuv daemon's first ``VLOG``
    takes glog's destroyed lock and aborts: SIGABRT after a finished run, in 2 of 51 runs of the three-launch
    test in ``tests/test_distributed.py`` here, and once in CI. PaddleNLP's own CI sets
    ``FLAGS_tcp_store_using_libuv=0``.
    """
    if world_size() <= 1 or dist.is_initialized():
        return
    if "FLAGS_tcp_store_using_libuv" not in os.environ:
        paddle.set_flags({"FLAGS_tcp_store_using_libuv": False})
    dist.init_parallel_env()


def check_batch_size(batch_size: int) -> None:
    if batch_size % world_size():
        raise ValueError(f"batch size {batch_size} does not divide among {world_size()} processes; "
                         f"use a multiple of {world_size()}")


def data_parallel(layer: paddle.nn.Layer) -> paddle.nn.Layer:
    """``paddle.DataParallel(layer)`` with more than one process, else ``layer`` itself."""
    return paddle.DataParallel(layer) if world_size() > 1 else layer


def gather(value: Any) -> List[Any]:
    """Every rank's ``value`` (any picklable object), in rank order; ``[value]`` with one process."""
    if world_size() <= 1:
        return [value]
    out: List[Any] = []
    dist.all_gather_object(out, value)
    return out


def broadcast_array(array: np.ndarray | None, shape, dtype: str = "float64") -> np.ndarray:
    """Rank 0's ``array`` on every rank (the others pass None)."""
    if world_size() <= 1:
        return array
    tensor = paddle.to_tensor(array.astype(dtype)) if is_main() else paddle.zeros(shape, dtype=dtype)
    dist.broadcast(tensor, src=0)
    return tensor.numpy()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
