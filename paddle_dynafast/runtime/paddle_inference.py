"""Paddle Inference behind the runtime interface: the exported program on CPU (plain kernels or oneDNN) or GPU."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from paddle import inference

from ..config.runtime import Precision, RuntimeName, as_precision
from .. import files
from ..errors import ArtifactError, ConfigError, summary
from .base import Runtime
from .export_info import PROGRAM, ExportInfo


class PaddleInferenceRuntime(Runtime):
    """``paddle.inference`` on an export directory.

    ``threads`` CPU threads; ``onednn`` uses oneDNN kernels on CPU, with at most
    ``cache_capacity`` input shapes' kernels kept (oneDNN prepares kernels per
    shape: the exit loop's shrinking batches and every sequence length make new
    ones); ``precision="bf16"`` runs oneDNN's bfloat16 kernels (AMX on CPUs that
    have it); on a GPU build of Paddle ``device="gpu"`` runs on GPU 0.
    ``sign_key`` checks the manifest's signature
    (:func:`~paddle_dynafast.runtime.manifest.verify`).
    """

    kind = RuntimeName.PADDLE_INFERENCE
    precisions = (Precision.FP32, Precision.BF16)

    def __init__(self, directory: str | Path, threads: int = 2, onednn: bool = True, device: str = "cpu",
                 precision: Precision | str = Precision.FP32, cache_capacity: int = 0,
                 sign_key: Optional[bytes] = None):
        precision = as_precision(precision, self.precisions, "Paddle Inference")
        if precision == Precision.BF16 and not (onednn and device == "cpu"):
            raise ConfigError("precision 'bf16' needs oneDNN on the CPU (not --no-onednn)")
        self.precision = precision
        self.info = ExportInfo.read(directory, sign_key)
        directory = self.info.directory
        program = next((directory / f"{PROGRAM}{suffix}" for suffix in (".json", ".pdmodel")
                        if files.exists(directory / f"{PROGRAM}{suffix}")), None)
        if program is None:
            raise ArtifactError(f"{directory} has no {PROGRAM}.json or {PROGRAM}.pdmodel")
        config = inference.Config(str(program), str(directory / f"{PROGRAM}.pdiparams"))
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
        else:
            raise ConfigError(f"device {device!r} is not 'cpu' or 'gpu'")
        config.disable_glog_info()
        try:
            self.predictor = inference.create_predictor(config)
        except Exception as error:  # Paddle's RuntimeError or ValueError on a damaged file: name the file
            raise ArtifactError(f"{_damaged(program)} cannot be loaded by Paddle Inference (damaged or truncated?): "
                                f"{summary(error)}") from error
        self.output_names = self.predictor.get_output_names()
        self.check_program(self.predictor.get_input_names(), self.output_names, self.info.outputs)

    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        feeds = {"input_ids": input_ids, "token_type_ids": token_type_ids}
        if self.info.exit_loop:
            feeds["speed"] = np.array([speed], dtype="float32")
        for name, value in feeds.items():
            self.predictor.get_input_handle(name).copy_from_cpu(value)
        self.predictor.run()
        by_name = {n: self.predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names}
        return self._outputs(by_name, self.info.outputs, [by_name[n] for n in self.output_names])


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
