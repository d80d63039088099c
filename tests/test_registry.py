"""The registry: every runtime by the name --runtime takes; open_named opens one, passing its precision only when it
is not fp32, and names an unknown runtime or a precision the runtime does not run before opening anything."""
import re

import pytest

from paddle_dynafast.errors import ConfigError
from paddle_dynafast.runtime import registry
from paddle_dynafast.runtime.dygraph import DygraphRuntime
from paddle_dynafast.runtime.onnx_runtime import OnnxRuntime
from paddle_dynafast.runtime.paddle_inference import PaddleInferenceRuntime


class Recorded:
    """Stands in for a runtime class: records how it was constructed."""

    kind, precisions = "recorded", ("fp32", "int8")

    def __init__(self, directory, **kwargs):
        self.directory, self.kwargs = directory, kwargs


def test_every_runtime_by_its_name():
    assert {kind: registry.RUNTIMES[kind] for kind in registry.RUNTIMES} == {
        "paddle-inference": PaddleInferenceRuntime, "onnxruntime": OnnxRuntime, "dygraph": DygraphRuntime}


def test_open_named_passes_threads_options_and_a_precision_other_than_fp32(monkeypatch):
    monkeypatch.setitem(registry.RUNTIMES, "recorded", Recorded)
    fp32 = registry.open_named("somewhere", "recorded", threads=3, cache_capacity=2)
    assert (fp32.directory, fp32.kwargs) == ("somewhere", {"threads": 3, "cache_capacity": 2})
    int8 = registry.open_named("somewhere", "recorded", precision="int8")
    assert int8.kwargs == {"threads": 2, "precision": "int8"}


@pytest.mark.parametrize("kind, precision, message", [
    ("tensorrt", "fp32", "runtime 'tensorrt' is not one of ['dygraph', 'onnxruntime', 'paddle-inference']"),
    ("auto", "fp32", "runtime 'auto' is not one of"),  # auto is above the registry (runtime/auto.py)
    ("dygraph", "int8", "runtime dygraph runs fp32, not int8"),
    ("paddle-inference", "int8", "runtime paddle-inference runs fp32 or bf16, not int8"),
    ("onnxruntime", "bf16", "runtime onnxruntime runs fp32 or int8, not bf16"),
])
def test_unknown_runtimes_and_precisions_are_named_before_anything_opens(tmp_path, kind, precision, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        registry.open_named(tmp_path / "nothing here", kind, precision=precision)


def test_every_runtime_names_its_kind_and_precisions_typed():
    from paddle_dynafast.config import Precision, RuntimeName

    assert {kind: cls.precisions for kind, cls in registry.RUNTIMES.items()} == {
        RuntimeName.PADDLE_INFERENCE: (Precision.FP32, Precision.BF16),
        RuntimeName.ONNXRUNTIME: (Precision.FP32, Precision.INT8), RuntimeName.DYGRAPH: (Precision.FP32,)}
    assert all(type(kind) is RuntimeName and kind is cls.kind for kind, cls in registry.RUNTIMES.items())
