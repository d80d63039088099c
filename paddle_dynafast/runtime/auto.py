"""Opening a runtime by name, or ``auto``: the fastest here for this export and precision, measured once and
remembered (:mod:`.choose`)."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import Runtime
from .choose import choose
from .paddle_inference import PaddleInferenceRuntime
from .registry import RUNTIMES, open_named

AUTO = "auto"
"""The runtime name that means: the fastest here, measured (:mod:`paddle_dynafast.runtime.choose`)."""
UNIVERSAL_OPTIONS = {"sign_key"}
"""Options every export runtime takes (the others belong to one runtime)."""


def open_runtime(directory: str | Path, kind: str = PaddleInferenceRuntime.kind, threads: int = 2,
                 precision: str = "fp32", **options) -> Runtime:
    """The runtime ``kind`` on ``directory`` (an export directory; for ``dygraph`` also a stage directory) in
    ``precision`` (``fp32``; ``bf16`` on Paddle Inference with oneDNN; ``int8`` on ONNX Runtime).

    ``options`` go to the runtime's constructor (``onednn``, ``device``, ``cache_capacity`` for Paddle Inference;
    ``width``, ``exit_loop`` for dygraph). ``kind="auto"`` measures which runtime is fastest here for this export
    and precision (:func:`paddle_dynafast.runtime.choose.choose`, remembered per machine) and opens that one."""
    if kind != AUTO:
        if kind not in RUNTIMES:
            raise ConfigError(f"runtime {kind!r} is not one of {sorted(RUNTIMES) + [AUTO]}")
        return open_named(directory, kind, threads, precision, **options)
    specific = sorted(set(options) - UNIVERSAL_OPTIONS)
    if specific:
        raise ConfigError(f"options {specific} belong to one runtime: name it (runtime=...), not auto")
    candidate, _ = choose(directory, precision, threads)
    return open_named(directory, candidate.runtime, threads, candidate.precision,
                      **{**options, **dict(candidate.options)})
