"""Every runtime behind one interface gives the same answers: Paddle Inference, ONNX Runtime and dygraph."""
import json

import numpy as np
import pytest

from helpers import texts_of
from paddle_dynafast.errors import ArtifactError, ConfigError
from paddle_dynafast.runtime.export_info import ExportInfo
from paddle_dynafast.runtime.bench import batches
from paddle_dynafast.runtime.dygraph import DygraphRuntime
from paddle_dynafast.runtime.onnx_runtime import OnnxRuntime
from paddle_dynafast.runtime.predictor import Predictor
from paddle_dynafast.runtime.auto import open_runtime
from paddle_dynafast.runtime.registry import RUNTIMES


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



@pytest.mark.parametrize("width, exit_loop", [(1.0, True), (0.5, True), (1.0, False), (0.5, False)])
def test_dygraph_equals_paddle_inference(tiny_exports, toy_data, width, exit_loop):
    directory = tiny_exports[(width, exit_loop)]
    paddle_inference = open_runtime(directory, "paddle-inference", threads=1, onednn=False)
    dygraph = open_runtime(directory, "dygraph")
    assert dygraph.info.width == width and dygraph.info.exit_loop is exit_loop
    assert dygraph.info.labels == paddle_inference.info.labels
    features, _ = Predictor(paddle_inference).encode(texts_of(toy_data, 24))
    for ids, types, _ in batches(features, 0, 8):
        for speed in (0.0, 0.3, 1.0):
            p_inference, e_inference = paddle_inference.run_batch(ids, types, speed)
            p_dygraph, e_dygraph = dygraph.run_batch(ids, types, speed)
            np.testing.assert_array_equal(e_dygraph, e_inference)
            np.testing.assert_allclose(p_dygraph, p_inference, atol=1e-5)


def test_outputs_are_read_by_the_names_export_json_records(tiny_exports):
    info = ExportInfo.read(tiny_exports[(1.0, True)])
    raw = json.loads((tiny_exports[(1.0, True)] / "export.json").read_text())
    assert list(raw["outputs"]) == ["probs", "exit_layer", "uncertainty"]
    runtime = open_runtime(tiny_exports[(1.0, True)], threads=1)
    assert list(info.outputs) == list(raw["outputs"].values()) == runtime.output_names
    onnx = OnnxRuntime(tiny_exports[(0.5, True)], threads=1)
    assert list(ExportInfo.read(tiny_exports[(0.5, True)]).onnx_outputs) == onnx.output_names


def test_unknown_runtime_and_missing_onnx_are_named(tiny_exports):
    assert set(RUNTIMES) == {"paddle-inference", "onnxruntime", "dygraph"}
    with pytest.raises(ConfigError, match=r"runtime 'tensorrt' is not one of \['dygraph', 'onnxruntime', "
                                          r"'paddle-inference', 'auto'\]"):
        open_runtime(tiny_exports[(1.0, True)], "tensorrt")
    with pytest.raises(ArtifactError, match="has no model.onnx; export it with --onnx"):
        OnnxRuntime(tiny_exports[(1.0, True)])


def test_dygraph_runs_a_stage_directory(tiny_dynafast_dir, tiny_supernet_dir):
    runtime = DygraphRuntime(tiny_dynafast_dir, width=0.5)
    assert runtime.info.exit_loop and runtime.info.max_seq_len == 16 and runtime.info.labels == ("0", "1")
    plain = DygraphRuntime(tiny_supernet_dir, width=0.25)
    assert not plain.info.exit_loop
    with pytest.raises(ValueError, match="width 0.3 was not trained"):
        DygraphRuntime(tiny_supernet_dir, width=0.3)


def test_bf16_on_onednn_stays_close_to_float32(tiny_exports, toy_data):
    directory, texts = tiny_exports[(1.0, True)], texts_of(toy_data, 32)
    fp32 = Predictor(directory, "paddle-inference", threads=1).predict(texts, speed=0.3)
    bf16 = Predictor(directory, "paddle-inference", threads=1, precision="bf16").predict(texts, speed=0.3)
    assert np.mean(bf16.label_ids == fp32.label_ids) >= 0.9 and np.abs(bf16.probs - fp32.probs).mean() < 0.05


def test_a_precision_a_runtime_does_not_run_is_named(tiny_exports):
    with pytest.raises(ConfigError, match="runtime dygraph runs fp32, not int8"):
        open_runtime(tiny_exports[(1.0, True)], "dygraph", precision="int8")
    with pytest.raises(ConfigError, match="runtime paddle-inference runs fp32 or bf16, not int8"):
        open_runtime(tiny_exports[(1.0, True)], "paddle-inference", precision="int8")
    with pytest.raises(ConfigError, match="precision 'bf16' needs oneDNN on the CPU"):
        open_runtime(tiny_exports[(1.0, True)], "paddle-inference", precision="bf16", onednn=False)


def test_every_runtime_names_its_kind_and_precisions_typed():
    from paddle_dynafast.config import Precision, RuntimeName

    assert {kind: cls.precisions for kind, cls in RUNTIMES.items()} == {
        RuntimeName.PADDLE_INFERENCE: (Precision.FP32, Precision.BF16),
        RuntimeName.ONNXRUNTIME: (Precision.FP32, Precision.INT8), RuntimeName.DYGRAPH: (Precision.FP32,)}
    assert all(type(kind) is RuntimeName and kind is cls.kind for kind, cls in RUNTIMES.items())


def test_a_runtime_config_opens_the_runtime_it_names_with_its_options(tiny_exports, tmp_path):
    from paddle_dynafast.config import Precision, RuntimeConfig
    from paddle_dynafast.runtime.auto import open_configured, runtime_options

    assert runtime_options(RuntimeConfig(name="paddle-inference", onednn=False)) == {"precision": "fp32",
                                                                                    "onednn": False}
    assert runtime_options(RuntimeConfig(name="dygraph", trust_pickle=True)) == {"precision": "fp32",
                                                                                 "trust_pickle": True}
    assert runtime_options(RuntimeConfig(precision="int8")) == {"precision": Precision.INT8}  # auto: no runtime's own
    (tmp_path / "key").write_bytes(b"0123456789abcdef0123456789abcdef\n")
    assert runtime_options(RuntimeConfig(sign_key_file=str(tmp_path / "key")))["sign_key"] == \
        b"0123456789abcdef0123456789abcdef"
    runtime = open_configured(tiny_exports[(0.5, True)], RuntimeConfig(name="onnxruntime", threads=1, precision="int8"))
    assert (runtime.kind, runtime.precision, runtime.session.get_session_options().intra_op_num_threads) == \
        ("onnxruntime", "int8", 1)
    with pytest.raises(ConfigError, match="runtime paddle-inference runs fp32 or bf16, not int8"):
        open_configured(tiny_exports[(0.5, True)], RuntimeConfig(name="paddle-inference", precision="int8"))
