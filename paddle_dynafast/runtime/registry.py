"""Every runtime by the name ``--runtime`` takes, and :func:`open_named`, which opens one of them.

``--runtime auto`` (the fastest here, measured) is above this module: :mod:`.auto`."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Type

from ..errors import ConfigError
from .base import Runtime
from .dygraph import DygraphRuntime
from .onnx_runtime import OnnxRuntime
from .paddle_inference import PaddleInferenceRuntime

RUNTIMES: Dict[str, Type[Runtime]] = {cls.kind: cls for cls in (PaddleInferenceRuntime, OnnxRuntime, DygraphRuntime)}


def open_named(directory: str | Path, kind: str, threads: int = 2, precision: str = "fp32", **options) -> Runtime:
    """The runtime ``kind`` (a name of :data:`RUNTIMES`) on ``directory`` in ``precision``; ``options`` go to its
    constructor."""
    if kind not in RUNTIMES:
        raise ConfigError(f"runtime {kind!r} is not one of {sorted(RUNTIMES)}")
    runtime = RUNTIMES[kind]
    if precision not in runtime.precisions:
        raise ConfigError(f"runtime {kind} runs {' or '.join(runtime.precisions)}, not {precision}")
    if precision != "fp32":
        options["precision"] = precision
    return runtime(directory, threads=threads, **options)
