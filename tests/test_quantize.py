"""int8 post-training quantization for ONNX Runtime: the weight scheme and the dynamic product against NumPy, every
matrix product of the exit loop reached (its If subgraphs included), predictions close to float32, dynamic and
static."""
import json

import numpy as np
import pytest

from helpers import texts_of
from paddle_dynafast.errors import ArtifactError, ConfigError
from paddle_dynafast.runtime import quantize
from paddle_dynafast.config import ExportConfig
from paddle_dynafast.runtime.export import export_model
from paddle_dynafast.runtime.onnx_runtime import OnnxRuntime
from paddle_dynafast.runtime.predictor import Predictor


def test_weights_are_symmetric_int8_per_output_channel():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((16, 5)).astype("float32") * np.array([1, 10, 0.1, 3, 0], "float32")
    q, scale = quantize.quantize_weight(weight)
    assert q.dtype == np.int8 and scale.shape == (5,) and np.abs(q).max() <= 127
    np.testing.assert_allclose(scale[:4], np.abs(weight[:, :4]).max(axis=0) / 127, rtol=1e-6)
    assert scale[4] == 1.0 and not q[:, 4].any()  # an all-zero column stays zero
    assert (np.abs(q.astype("float32") * scale - weight) <= scale / 2 + 1e-6).all()


@pytest.fixture(scope="module")
def static_exports(tmp_path_factory, tiny_dynafast_dir):
    """Width 0.5 of the tiny distilled model with static int8 activations, ``{exit_loop: directory}``."""
    root = tmp_path_factory.mktemp("static")
    return {exit_loop: export_model(ExportConfig(tiny_dynafast_dir, root / str(exit_loop), width=0.5,
                                                 no_exit=not exit_loop, int8=True, int8_activations="static",
                                                 calibration_examples=64))
            for exit_loop in (True, False)}


def test_the_dynamic_product_equals_numpy(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weight = rng.standard_normal((8, 3)).astype("float32")
    x = (rng.standard_normal((2, 4, 8)) + 0.5).astype("float32")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weight)),
         helper.make_node("MatMul", ["x", "w"], ["y"], name="product")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "f.onnx"))
    assert quantize.quantize_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx", {"w": None}) == 1
    import onnxruntime

    got = onnxruntime.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    scale = (max(x.max(), 0) - min(x.min(), 0)) / 255  # uint8 over the input's own range, zero a level
    zero = np.clip(np.round(-min(x.min(), 0) / scale), 0, 255)
    q = np.clip(np.round(x / scale) + zero, 0, 255)
    wq, wscale = quantize.quantize_weight(weight)
    np.testing.assert_allclose(got, ((q - zero) @ wq.astype("float32")) * scale * wscale, rtol=1e-5, atol=1e-5)
    assert np.abs(got - x @ weight).max() < 0.1


@pytest.mark.parametrize("scheme", ["dynamic", "static"])
def test_every_matmul_of_the_exit_loop_is_quantized(tiny_exports, static_exports, scheme):
    directory = tiny_exports[(0.5, True)] if scheme == "dynamic" else static_exports[True]
    info = json.loads((directory / "export.json").read_text())
    # 2 layers x 6 linears, pooler and classifier, and the branch's 7 (narrow, q, k, v, out, pre-logits, logits)
    assert info["int8"]["matmuls"] == 2 * 6 + 2 + 7 and info["int8"]["activations"] == scheme
    assert (info["int8"]["calibration_examples"] is None) == (scheme == "dynamic")
    import onnx

    model = onnx.load(str(directory / "model.int8.onnx"))
    quantizer = "DynamicQuantizeLinear" if scheme == "dynamic" else "QuantizeLinear"
    inner = [n for node in model.graph.node if node.op_type == "If" for a in node.attribute if a.g.node
             for n in a.g.node if n.op_type == quantizer]
    assert inner, "the If subgraph (layer 2) holds quantized products too"


@pytest.mark.parametrize("scheme", ["dynamic", "static"])
@pytest.mark.parametrize("exit_loop", [True, False])
def test_int8_predictions_stay_close_to_float32(tiny_exports, static_exports, toy_data, exit_loop, scheme):
    directory = tiny_exports[(0.5, exit_loop)] if scheme == "dynamic" else static_exports[exit_loop]
    texts = texts_of(toy_data, 48)
    fp32 = Predictor(OnnxRuntime(directory, threads=1)).predict(texts, speed=0.3)
    int8 = Predictor(OnnxRuntime(directory, threads=1, precision="int8")).predict(texts, speed=0.3)
    assert np.mean(int8.label_ids == fp32.label_ids) >= 0.9
    assert np.mean(int8.exit_layer == fp32.exit_layer) >= 0.9
    assert np.abs(int8.probs - fp32.probs).mean() < 0.05


def test_names_that_match_no_product_are_an_error(tmp_path, tiny_exports):
    with pytest.raises(ArtifactError, match="no MatMul uses the weights to quantize"):
        quantize.quantize_onnx(tiny_exports[(0.5, True)] / "model.onnx", tmp_path / "x.onnx", {"nothing.w_0": 1.0})
    with pytest.raises(ValueError, match="precision 'int4' is not one of"):
        OnnxRuntime(tiny_exports[(0.5, True)], precision="int4")
    with pytest.raises(ArtifactError, match="has no model.int8.onnx; export it with --int8"):
        OnnxRuntime(tiny_exports[(1.0, True)], precision="int8")


def test_an_unknown_activation_scheme_is_an_error(tiny_dynafast_dir, tmp_path):
    with pytest.raises(ConfigError, match="int8_activations 'fixed' is not one of dynamic, static"):
        export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "x", int8=True, int8_activations="fixed"))


def test_activation_scales():
    scale, zero = quantize.activation_scale(2.54)  # symmetric int8 for max |x|
    assert scale == pytest.approx(0.02) and zero.dtype == np.int8 and zero == 0
    scale, zero = quantize.activation_scale((-0.17, 5.0))  # a GELU output: asymmetric uint8
    assert zero.dtype == np.uint8 and scale == pytest.approx(5.17 / 255)
    assert zero == round(0.17 / scale) and abs(zero * scale - 0.17) <= scale / 2  # zero is exactly a level
    assert quantize.activation_scale((0.5, 3.0))[1] == 0  # the range always holds zero
