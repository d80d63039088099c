"""Every runtime by the name ``--runtime`` takes, and :func:`open_named`, which opens one of them.

``--runtime auto`` (the fastest here, measured) is above this module: :mod:`.auto`."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Dict, Type

from ..config.runtime import Precision, RuntimeName, as_precision, as_runtime
from ..errors import ConfigError
from .base import Runtime


class _Registry(dict):
    """Runtime classes by name, each module imported when its runtime is first asked for: the dygraph runtime
    imports PaddleNLP, which a serving install (``pip install paddle_dynafast[serve]``) does not have and a server
    does not need."""

    def __getitem__(self, kind):
        value = super().__getitem__(kind)
        if isinstance(value, tuple):
            module, name = value
            try:
                value = getattr(importlib.import_module(module, __package__), name)
            except ImportError as error:
                raise ConfigError(f"runtime {kind} needs {error.name}, which is not installed (pip install "
                                  "paddle_dynafast[train])") from error
            super().__setitem__(kind, value)
        return value


RUNTIMES: Dict[RuntimeName, Type[Runtime]] = _Registry({
    RuntimeName.PADDLE_INFERENCE: (".paddle_inference", "PaddleInferenceRuntime"),
    RuntimeName.ONNXRUNTIME: (".onnx_runtime", "OnnxRuntime"),
    RuntimeName.DYGRAPH: (".dygraph", "DygraphRuntime")})


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
