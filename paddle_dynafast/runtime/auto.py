"""Opening a runtime by name, or ``auto``: the fastest here for this export and precision, measured once and
remembered (:mod:`.choose`); and by a :class:`~paddle_dynafast.config.RuntimeConfig` (:func:`open_configured`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from ..config.runtime import (MEASURE, Precision, RuntimeConfig, RuntimeName, as_precision, as_runtime,
                              check_native_below)
from ..errors import ConfigError
from .base import Runtime
from .choose import choose, remembered_crossover
from .export_info import ExportInfo
from .manifest import read_sign_key
from .registry import open_named

AUTO = RuntimeName.AUTO
"""The runtime name that means: the fastest here, measured (:mod:`paddle_dynafast.runtime.choose`)."""
UNIVERSAL_OPTIONS = {"sign_key"}
"""Options every export runtime takes (the others belong to one runtime)."""


def open_runtime(directory: str | Path, kind: RuntimeName | str = RuntimeName.PADDLE_INFERENCE, threads: int = 2,
                 precision: Precision | str = Precision.FP32, **options) -> Runtime:
    """The runtime ``kind`` on ``directory`` (an export directory; for ``dygraph`` also a stage directory) in
    ``precision`` (``fp32``; ``bf16`` on Paddle Inference with oneDNN; ``int8`` on ONNX Runtime).

    ``options`` go to the runtime's constructor (``onednn``, ``device``, ``cache_capacity``, ``native_below`` (a
    number, or ``"auto"``: measured here once and remembered) for Paddle Inference;
    ``width``, ``exit_loop`` for dygraph). ``kind="auto"`` measures which runtime is fastest here for this export
    and precision (:func:`paddle_dynafast.runtime.choose.choose`, remembered per machine) and opens that one."""
    if as_runtime(kind) != AUTO:
        if options.get("native_below") == MEASURE and as_runtime(kind) == RuntimeName.PADDLE_INFERENCE:
            check_native_below(MEASURE, options.get("onednn", True) and options.get("device", "cpu") == "cpu",
                               as_precision(precision))  # the runtime's own rule, before anything is measured
            options["native_below"] = remembered_crossover(directory, threads)
        return open_named(directory, kind, threads, precision, **options)
    specific = sorted(set(options) - UNIVERSAL_OPTIONS)
    if specific:
        raise ConfigError(f"options {specific} belong to one runtime: name it (runtime=...), not auto")
    if options.get("sign_key") is not None:
        ExportInfo.read(directory, options["sign_key"])
    candidate, _ = choose(directory, precision, threads)
    return open_named(directory, candidate.runtime, threads, candidate.precision,
                      **{**options, **dict(candidate.options)})


def runtime_options(config: RuntimeConfig) -> Dict[str, Any]:
    """The keyword options of :func:`open_runtime` that ``config`` sets: its precision, oneDNN (and the plain kernels
    for small batches) on Paddle Inference, pickle trust on dygraph, and the sign key read from its file."""
    options: Dict[str, Any] = {"precision": config.precision}
    if config.name == RuntimeName.PADDLE_INFERENCE:
        options["onednn"] = config.onednn
        if config.native_below:
            options["native_below"] = config.native_below
    if config.name == RuntimeName.DYGRAPH:
        options["trust_pickle"] = config.trust_pickle
    if config.sign_key_file:
        options["sign_key"] = read_sign_key(config.sign_key_file)
    return options


def open_configured(directory: str | Path, config: RuntimeConfig) -> Runtime:
    """The runtime ``config`` names, on ``directory``, with ``config``'s threads and options."""
    return open_runtime(directory, config.name, config.threads, **runtime_options(config))
