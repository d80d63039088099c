"""Every runtime by the name ``--runtime`` takes, and :func:`open_runtime`."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Type

from ..errors import ConfigError
from .base import Runtime
from .dygraph import DygraphRuntime
from .onnx_runtime import OnnxRuntime
from .paddle_inference import PaddleInferenceRuntime

RUNTIMES: Dict[str, Type[Runtime]] = {cls.kind: cls for cls in (PaddleInferenceRuntime, OnnxRuntime, DygraphRuntime)}


def open_runtime(directory: str | Path, kind: str = PaddleInferenceRuntime.kind, threads: int = 2,
                 **options) -> Runtime:
    """The runtime ``kind`` on ``directory`` (an export directory; for ``dygraph`` also a stage directory).

    ``options`` go to the runtime's constructor (``onednn``, ``device`` for Paddle Inference; ``width``,
    ``exit_loop`` for dygraph)."""
    if kind not in RUNTIMES:
        raise ConfigError(f"runtime {kind!r} is not one of {sorted(RUNTIMES)}")
    return RUNTIMES[kind](directory, threads=threads, **options)
