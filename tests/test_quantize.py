"""int8 post-training quantization for ONNX Runtime: the weight scheme and the per-token and dynamic products against
NumPy, a text's answer the same alone, in a batch and beside an outlier (per token), every matrix product of the exit
loop reached (its If subgraphs included), predictions close to float32 in every scheme."""
import json

import numpy as np
import pytest

from helpers import one_quantized_product, texts_of
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


def test_weights_take_fewer_bits_when_asked():
    weight = np.linspace(-3, 3, 40, dtype="float32").reshape(8, 5)
    q, scale = quantize.quantize_weight(weight, bits=7)
    assert np.abs(q).max() == 63 and np.allclose(scale, np.abs(weight).max(axis=0) / 63)
    with pytest.raises(ValueError, match="9-bit weights"):
        quantize.quantize_weight(weight, bits=9)


def _uint8(x, axis):
    """NumPy's uint8 levels of ``x`` over its (min, max) along ``axis`` (None: the whole tensor), zero a level."""
    low, high = np.minimum(x.min(axis=axis, keepdims=True), 0), np.maximum(x.max(axis=axis, keepdims=True), 0)
    scale = np.maximum((high - low) / 255, np.float32(1e-8)).astype("float32")
    zero = np.round(-low / scale)
    return np.clip(np.round(x / scale) + zero, 0, 255) - zero, scale


def test_the_dynamic_product_equals_numpy(tmp_path):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((8, 3)).astype("float32")
    x = (rng.standard_normal((2, 4, 8)) + 0.5).astype("float32")
    got = one_quantized_product(tmp_path, weight, "dynamic")(x)
    levels, scale = _uint8(x, axis=None)  # uint8 over the input's own range, zero a level
    wq, wscale = quantize.quantize_weight(weight)
    np.testing.assert_allclose(got, (levels @ wq.astype("float32")) * scale * wscale, rtol=1e-5, atol=1e-5)
    assert np.abs(got - x @ weight).max() < 0.1


def test_the_per_token_product_equals_numpy_exactly_whatever_the_other_rows(tmp_path):
    """Each token's own scale and zero point, 7-bit weights: the integer product is exact (no int16 saturation on
    any CPU), so a row's result is NumPy's to float32 rounding, and the same whatever rows sit beside it."""
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((384, 96)).astype("float32")  # wide enough for saturation to show if it could
    x = (rng.standard_normal((3, 5, 384)) * 4 + 1).astype("float32")
    x[0, 0] = np.abs(x[0, 0]) * 30  # a token of large positive values: uint8 codes near 255 with weights near 63
    x[1, 2] = 0.0  # an all-zero token
    product = one_quantized_product(tmp_path, weight, "token")
    got = product(x)
    levels, scale = _uint8(x, axis=-1)
    wq, wscale = quantize.quantize_weight(weight, bits=7)
    want = (levels.astype("float64") @ wq.astype("float64")) * scale * wscale
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * np.abs(want).max())
    assert not got[1, 2].any()
    outlier = x.copy()
    outlier[2] *= 1000  # another text with huge activations
    np.testing.assert_array_equal(product(outlier)[:2], got[:2])
    np.testing.assert_array_equal(product(x[1:2]), got[1:2])  # alone
    np.testing.assert_array_equal(product(x[:, :3]), got[:, :3])  # its padding removed


def test_weight_bits_override_the_schemes_bits(tmp_path):
    """``weight_bits=8`` per token (what benchmarks/int8_levers.py measures beside the default's 7 bits): the stored
    weights reach 127, and the product is NumPy's where no int16 pair sum can pass 32767 (every other row zero)."""
    import onnx
    from onnx import numpy_helper

    rng = np.random.default_rng(4)
    weight = rng.standard_normal((32, 6)).astype("float32")
    weight[1::2] = 0  # each pair of products is one uint8 x int8, at most 255 x 127
    stored = {}
    for bits in (None, 8):
        product = one_quantized_product(tmp_path, weight, "token", bits)
        stored[bits] = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "q.onnx")).graph.initializer}
    assert np.abs(stored[None]["product.q.w"]).max() == 63 and np.abs(stored[8]["product.q.w"]).max() == 127
    x = rng.standard_normal((2, 3, 32)).astype("float32")
    levels, scale = _uint8(x, axis=-1)
    wq, wscale = quantize.quantize_weight(weight, bits=8)
    np.testing.assert_allclose(product(x), (levels @ wq.astype("float32")) * scale * wscale, rtol=1e-5, atol=1e-4)
    for bits in (1, 9):
        with pytest.raises(ValueError, match=f"{bits}-bit weights"):
            quantize.quantize_onnx(tmp_path / "f.onnx", tmp_path / "never.onnx", {"w": None}, "token", bits)
    assert not (tmp_path / "never.onnx").exists()


def test_an_int8_answer_is_the_same_alone_in_a_batch_and_beside_an_outlier(tiny_exports, toy_data):
    """The issue's defect: with one scale per batch (dynamic), a text's probabilities moved with its neighbours;
    per token (the default) they do not, nor its exit layer, at any speed."""
    directory = tiny_exports[(0.5, True)]
    assert json.loads((directory / "export.json").read_text())["int8"]["activations"] == "token"
    predictor = Predictor(OnnxRuntime(directory, threads=1, precision="int8"))
    texts = texts_of(toy_data, 24)
    outlier = " ".join(["good"] * 40 + ["bad", "w1"] * 20)  # long, repetitive: activations unlike the others'
    for speed in (0.0, 0.3, 1.0):
        batched = predictor.predict(texts, speed=speed, batch_size=32)
        beside = predictor.predict(texts + [outlier], speed=speed, batch_size=32)
        alone = [predictor.predict([text], speed=speed) for text in texts]
        np.testing.assert_allclose(np.concatenate([a.probs for a in alone]), batched.probs, rtol=0, atol=1e-5)
        np.testing.assert_allclose(beside.probs[:-1], batched.probs, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(np.concatenate([a.exit_layer for a in alone]), batched.exit_layer)
        np.testing.assert_array_equal(beside.exit_layer[:-1], batched.exit_layer)


def test_one_scale_per_batch_is_what_made_answers_depend_on_the_batch(tmp_path):
    """The same product with the batch's scale (dynamic): another text's outlier changes this text's result, which
    is why the default is per token."""
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((64, 8)).astype("float32")
    x = rng.standard_normal((2, 3, 64)).astype("float32")
    product = one_quantized_product(tmp_path, weight, "dynamic")
    outlier = x.copy()
    outlier[1] *= 1000
    assert np.abs(product(outlier)[0] - product(x)[0]).max() > 1e-2


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.g.node:
                yield from _all_nodes(attribute.g)


@pytest.mark.parametrize("scheme", ["token", "static"])
def test_every_matmul_of_the_exit_loop_is_quantized_but_the_most_sensitive(tiny_exports, static_exports, scheme):
    """Every product by a weight is int8, the If subgraphs' included, except the ``int8_float_products`` (4 by
    default) of the backbone the sweep found most sensitive, which stay float32 ``MatMul`` by a weight."""
    import onnx

    directory = tiny_exports[(0.5, True)] if scheme == "token" else static_exports[True]
    info = json.loads((directory / "export.json").read_text())["int8"]
    kept = info["float_products"]
    # 2 layers x 6 linears, pooler and classifier, and the branch's 7 (narrow, q, k, v, out, pre-logits, logits)
    assert info["matmuls"] + len(kept) == 2 * 6 + 2 + 7 and info["activations"] == scheme
    assert info["float_products_asked"] == len(kept) == 4
    assert not any(k["layer"].startswith("branches") for k in kept)
    assert info["calibration_examples"] == (256 if scheme == "token" else 64)
    assert info["weight_bits"] == (7 if scheme == "token" else 8)
    model = onnx.load(str(directory / "model.int8.onnx"))
    constants = {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    nodes = list(_all_nodes(model.graph))
    quantizer = "MatMulInteger" if scheme == "token" else "QuantizeLinear"
    assert sum(n.op_type == quantizer for n in nodes) == info["matmuls"]
    assert sorted(n.input[1] for n in nodes if n.op_type == "MatMul" and n.input[1] in constants) == sorted(
        k["weight"] for k in kept)
    inner = [n for node in model.graph.node if node.op_type == "If" for a in node.attribute if a.g.node
             for n in a.g.node if n.op_type == quantizer]
    assert inner, "the If subgraph (layer 2) holds quantized products too"


@pytest.mark.parametrize("scheme", ["token", "static"])
@pytest.mark.parametrize("exit_loop", [True, False])
def test_int8_predictions_stay_close_to_float32(tiny_exports, static_exports, toy_data, exit_loop, scheme):
    directory = tiny_exports[(0.5, exit_loop)] if scheme == "token" else static_exports[exit_loop]
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
    with pytest.raises(ConfigError, match="int8_activations 'fixed' is not one of token, dynamic, static"):
        export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "x", int8=True, int8_activations="fixed"))


def test_activation_scales():
    scale, zero = quantize.activation_scale(2.54)  # symmetric int8 for max |x|
    assert scale == pytest.approx(0.02) and zero.dtype == np.int8 and zero == 0
    scale, zero = quantize.activation_scale((-0.17, 5.0))  # a GELU output: asymmetric uint8
    assert zero.dtype == np.uint8 and scale == pytest.approx(5.17 / 255)
    assert zero == round(0.17 / scale) and abs(zero * scale - 0.17) <= scale / 2  # zero is exactly a level
    assert quantize.activation_scale((0.5, 3.0))[1] == 0  # the range always holds zero
