"""Every runtime by the name ``--runtime`` takes, and :func:`open_named`, which opens one of them.

``--runtime auto`` (the fastest here, measured) is above this module: :mod:`.auto`."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Type

from ..config.runtime import Precision, RuntimeName, as_precision, as_runtime
from ..errors import ConfigError
from .base import Runtime
from .dygraph import DygraphRuntime
from .onnx_runtime import OnnxRuntime
from .paddle_inference import PaddleInferenceRuntime

RUNTIMES: Dict[RuntimeName, Type[Runtime]] = {cls.kind: cls for cls in (PaddleInferenceRuntime, OnnxRuntime,
                                                                         DygraphRuntime)}


def open_named(directory: str | Path, kind: RuntimeName | str, threads: int = 2,
               precision: Precision | str = Precision.FP32, **options) -> Runtime:
    """The runtime ``kind`` (a name of :data:`RUNTIMES`) on ``directory`` in ``precision``; ``options`` go to its
    constructor."""
    kind, precision = as_runtime(kind, sorted(RUNTIMES)), as_precision(precision)
    runtime = RUNTIMES[kind]
    if precision not in runtime.precisions:
        raise ConfigError(f"runtime {kind} runs {' or '.join(runtime.precisions)}, not {precision}")
    if precision != Precision.FP32:
        options["precision"] = precision
    return runtime(directory, threads=threads, **options)
