"""Paddle Inference behind the runtime interface: the exported program on CPU (plain kernels or oneDNN) or GPU."""
from __future__ import annotations

import ctypes
import json
import logging
import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from paddle import inference

from ..config.runtime import Precision, RuntimeName, as_precision, check_native_below
from .. import files
from ..errors import ArtifactError, ConfigError, summary
from ..mkl import warn_generic_path
from .base import Runtime
from .export_info import PROGRAM, ExportInfo

logger = logging.getLogger(__name__)

PRIMITIVE_CACHE = 8192
"""oneDNN primitives kept by an oneDNN runtime (oneDNN's own default is 1024). oneDNN compiles a kernel per input shape
and keeps the last ones in a cache of its own; the exit loop's compacted batches make (rows, length) shapes that
1024 cannot hold: on SST-2's test texts at batch 32 and speed 0.36, 3600 primitives, and with the default cache
61 of the 204 a call asks for were compiled again on every call (``benchmarks/onednn_counts.py``)."""
PRIMITIVE_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
"""oneDNN's own variable for its cache capacity: when set, the runtime leaves the capacity to it."""

NATIVE_PASSES = ["matmul_add_act_fuse_pass"]
"""PIR passes added to Paddle Inference's pass list on the plain CPU kernels, whose own list fuses nothing:
``matmul_add_act_fuse_pass`` turns every linear layer's matmul and bias add into one ``fc`` operator (73 in the
SST-2 exit export at width 0.75, inside the exit loop's ``if`` blocks too), with the same answers bit for bit. On
2 cores of an AMD EPYC (SST-2 test, 3 interleaved rounds, docs/deployment.md): the full model 8 % more texts per
second at batch 32 and 10 % lower latency at batch 1, the shipped exit export 9 % and 9 %. (oneDNN's list fuses
these itself.)"""


class PaddleInferenceRuntime(Runtime):
    """``paddle.inference`` on an export directory.

    ``threads`` CPU threads; ``onednn`` uses oneDNN kernels on CPU, with at most
    ``cache_capacity`` input shapes' kernels kept (oneDNN prepares kernels per
    shape: the exit loop's shrinking batches and every sequence length make new
    ones); ``precision="bf16"`` runs oneDNN's bfloat16 kernels (AMX on CPUs that
    have it); on a GPU build of Paddle ``device="gpu"`` runs on GPU 0. ``primitive_cache`` raises oneDNN's own
    (process-wide) kernel cache to at least that many primitives (:func:`raise_primitive_cache`; 0 leaves it).
    ``native_below`` (oneDNN on the CPU, fp32) runs batches of fewer rows on Paddle's plain kernels, a second
    predictor of the same program: oneDNN pays a fixed price per primitive that small batches do not earn back,
    most of all in the exit loop, whose branches and exit test are many small operators
    (:func:`~paddle_dynafast.runtime.choose.crossover` measures where it starts to pay).
    ``sign_key`` checks the manifest's signature
    (:func:`~paddle_dynafast.runtime.manifest.verify`).
    """

    kind = RuntimeName.PADDLE_INFERENCE
    precisions = (Precision.FP32, Precision.BF16)

    def __init__(self, directory: str | Path, threads: int = 2, onednn: bool = True, device: str = "cpu",
                 precision: Precision | str = Precision.FP32, cache_capacity: int = 0,
                 primitive_cache: int = PRIMITIVE_CACHE, native_below: int = 0, sign_key: Optional[bytes] = None):
        precision = as_precision(precision, self.precisions, "Paddle Inference")
        if precision == Precision.BF16 and not (onednn and device == "cpu"):
            raise ConfigError("precision 'bf16' needs oneDNN on the CPU (not --no-onednn)")
        check_native_below(native_below, onednn and device == "cpu", precision, measured=False)
        self.precision, self.native_below = precision, native_below
        self.onednn = onednn and device == "cpu"  # the main predictor runs oneDNN's kernels
        self.info = ExportInfo.read(directory, sign_key)
        directory = self.info.directory
        program = next((directory / f"{PROGRAM}{suffix}" for suffix in (".json", ".pdmodel")
                        if files.exists(directory / f"{PROGRAM}{suffix}")), None)
        if program is None:
            raise ArtifactError(f"{directory} has no {PROGRAM}.json or {PROGRAM}.pdmodel")
        if onednn and device == "cpu" and primitive_cache:
            raise_primitive_cache(primitive_cache)
        self.predictor = _predictor(program, threads, onednn, device, precision, cache_capacity)
        self.native = _predictor(program, threads, False, device, precision, 0) if native_below > 1 else None
        self.output_names = self.predictor.get_output_names()
        self.check_program(self.predictor.get_input_names(), self.output_names, self.info.outputs)

    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        feeds = {"input_ids": input_ids, "token_type_ids": token_type_ids}
        if self.info.exit_loop:
            feeds["speed"] = np.array([speed], dtype="float32")
        predictor = self.native if self.native is not None and len(input_ids) < self.native_below else self.predictor
        for name, value in feeds.items():
            predictor.get_input_handle(name).copy_from_cpu(value)
        predictor.run()
        by_name = {n: predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names}
        return self._outputs(by_name, self.info.outputs, [by_name[n] for n in self.output_names])


def _predictor(program: Path, threads: int, onednn: bool, device: str, precision: Precision, cache_capacity: int):
    """A Paddle Inference predictor of ``program`` (and its ``.pdiparams``) on ``device``."""
    config = predictor_config(program, threads, onednn, device, precision, cache_capacity)
    try:
        return inference.create_predictor(config)
    except Exception as error:  # Paddle's RuntimeError or ValueError on a damaged file: name the file
        raise ArtifactError(f"{_damaged(program)} cannot be loaded by Paddle Inference (damaged or truncated?): "
                            f"{summary(error)}") from error


def predictor_config(program: Path, threads: int, onednn: bool, device: str, precision: Precision,
                     cache_capacity: int) -> inference.Config:
    """The Paddle Inference configuration the runtime's predictors are made from."""
    config = inference.Config(str(program), str(program.with_suffix(".pdiparams")))
    if device == "gpu":
        config.enable_use_gpu(256, 0)
    elif device == "cpu":
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads)
        if onednn:
            config.enable_mkldnn()
            if cache_capacity:
                config.set_mkldnn_cache_capacity(cache_capacity)
            if precision == Precision.BF16:
                config.enable_mkldnn_bfloat16()
        else:
            config.disable_mkldnn()
            config.enable_custom_passes(NATIVE_PASSES, False)  # False: Paddle's own passes run too
            warn_generic_path()
    else:
        raise ConfigError(f"device {device!r} is not 'cpu' or 'gpu'")
    config.disable_glog_info()
    return config


def _onednn() -> Optional[ctypes.CDLL]:
    """Paddle's oneDNN library (``paddle/libs/libdnnl.so.*``, already loaded by Paddle: the same instance), or None."""
    import paddle

    found = sorted((Path(paddle.__file__).parent / "libs").glob("libdnnl.so*"))
    try:
        return ctypes.CDLL(str(found[0])) if found else None
    except OSError:
        return None


def primitive_cache_capacity() -> Optional[int]:
    """oneDNN's primitive cache capacity in this process, or None when Paddle's oneDNN library is not found."""
    library = _onednn()
    if library is None:
        return None
    capacity = ctypes.c_int()
    library.dnnl_get_primitive_cache_capacity(ctypes.byref(capacity))
    return capacity.value


def raise_primitive_cache(capacity: int) -> Optional[int]:
    """Raise oneDNN's primitive cache (one per process) to at least ``capacity`` primitives, never lowering it, unless
    :data:`PRIMITIVE_CACHE_VARIABLE` is set (the user's choice). Returns the capacity in effect (None when Paddle's
    oneDNN library is not found: a build without it, or another platform's name). Results are unchanged: a cached
    primitive is the one oneDNN would compile again."""
    current = primitive_cache_capacity()
    if current is None or PRIMITIVE_CACHE_VARIABLE in os.environ or current >= capacity:
        return current
    if _onednn().dnnl_set_primitive_cache_capacity(ctypes.c_int(capacity)) != 0:  # dnnl_success is 0
        logger.warning("oneDNN refused a primitive cache of %d; it stays at %d", capacity, current)
        return current
    return capacity


def _damaged(program: Path) -> Path:
    """Which file of a program Paddle Inference refused is damaged: the program when it is not a PIR program's JSON
    (an object with ``program``), else its parameters."""
    if program.suffix == ".json":
        try:
            raw = json.loads(files.read_bytes(program))
        except (ValueError, RecursionError):
            return program
        if not isinstance(raw, dict) or not isinstance(raw.get("program"), dict):
            return program
    return program.with_suffix(".pdiparams")
