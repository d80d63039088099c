"""ONNX Runtime behind the runtime interface: the same answers as Paddle Inference, exit loop included; a missing
model file or an unknown precision is named."""
import json
import re

import numpy as np
import pytest

from helpers import texts_of
from paddle_dynafast.errors import ArtifactError, ConfigError
from paddle_dynafast.runtime.bench import batches
from paddle_dynafast.runtime.onnx_runtime import OnnxRuntime
from paddle_dynafast.runtime.predictor import Predictor


@pytest.mark.parametrize("exit_loop", [True, False])
def test_onnx_runtime_equals_paddle_inference(tiny_exports, toy_data, exit_loop):
    """paddle2onnx converts the exit loop too (its conditional blocks become ONNX If)."""
    directory = tiny_exports[(0.5, exit_loop)]
    assert (directory / "model.onnx").is_file() and "model.onnx" in json.loads((directory / "manifest.json").read_text())["files"]
    predictor, onnx = Predictor(directory, threads=1), OnnxRuntime(directory, threads=1)
    features, _ = predictor.encode(texts_of(toy_data, 32))
    for ids, types, _ in batches(features, 0, 8):
        for speed in (0.0, 0.3, 1.0) if exit_loop else (0.0,):
            p_paddle, e_paddle = predictor.run_batch(ids, types, speed)
            p_onnx, e_onnx = onnx.run_batch(ids, types, speed)
            np.testing.assert_array_equal(e_onnx, e_paddle)
            np.testing.assert_allclose(p_onnx, p_paddle, atol=1e-5)


def test_a_missing_model_or_precision_is_named(tiny_exports):
    with pytest.raises(ArtifactError, match="has no model.onnx; export it with --onnx"):
        OnnxRuntime(tiny_exports[(1.0, True)])
    with pytest.raises(ArtifactError, match="has no model.int8.onnx; export it with --int8"):
        OnnxRuntime(tiny_exports[(1.0, True)], precision="int8")
    with pytest.raises(ConfigError, match=re.escape("precision 'bf16' is not one of ['fp32', 'int8']")):
        OnnxRuntime(tiny_exports[(0.5, True)], precision="bf16")
    runtime = OnnxRuntime(tiny_exports[(0.5, True)], threads=1, precision="int8")
    assert (runtime.kind, runtime.precision, runtime.info.width) == ("onnxruntime", "int8", 0.5)
