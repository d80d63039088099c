"""ONNX Runtime behind the runtime interface, on ``model.onnx`` of an export directory (exit loop included)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..config.runtime import Precision, RuntimeName, as_precision
from .. import files
from ..errors import ArtifactError, summary
from .base import Runtime
from .export_info import INT8_ONNX_FILE, ONNX_FILE, ExportInfo

PRECISIONS = {Precision.FP32: ONNX_FILE, Precision.INT8: INT8_ONNX_FILE}
"""The file of the export each precision runs."""


def session_options(threads: int):
    """``threads`` intra-op threads, no inter-op parallelism, no spinning, errors only in the log."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: it warns about every constant paddle2onnx left unused
    return options


class OnnxRuntime(Runtime):
    """``intra_op`` threads, no inter-op parallelism, and thread spinning off, so that it does not steal the cores
    of another runtime measured beside it."""

    kind = RuntimeName.ONNXRUNTIME
    precisions = tuple(PRECISIONS)

    def __init__(self, directory: str | Path, threads: int = 2, precision: Precision | str = Precision.FP32,
                 sign_key: Optional[bytes] = None):
        import onnxruntime  # optional at import time: only this runtime needs it

        precision = as_precision(precision, self.precisions, "ONNX Runtime")
        self.info, self.precision = ExportInfo.read(directory, sign_key), precision
        path = self.info.directory / PRECISIONS[precision]
        if not files.exists(path):
            raise ArtifactError(f"{self.info.directory} has no {path.name}; export it with "
                                + ("--int8" if precision == Precision.INT8 else "--onnx"))
        try:
            self.session = onnxruntime.InferenceSession(str(files.check_regular(path)), session_options(threads),
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # InvalidProtobuf, Fail: a damaged or truncated file
            raise ArtifactError(f"{path} cannot be loaded by ONNX Runtime (damaged or truncated?): "
                                f"{summary(error)}") from error
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.check_program([i.name for i in self.session.get_inputs()], self.output_names, self.info.onnx_outputs)

    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        feeds = {"input_ids": input_ids, "token_type_ids": token_type_ids}
        if self.info.exit_loop:
            feeds["speed"] = np.array([speed], dtype="float32")
        values = self.session.run(None, feeds)
        return self._outputs(dict(zip(self.output_names, values)), self.info.onnx_outputs, values)
