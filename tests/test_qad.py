"""Quantization-aware distillation: the Paddle simulation of int8 equals ONNX Runtime running the export's per-token
quantization of the same product, gradients pass straight through the rounding, the simulation is undone after its
block, and a few steps bring the simulated int8 model closer to float32 while only the products' weights move."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from helpers import one_quantized_product
from paddle_dynafast.model.forward import Probabilities
from paddle_dynafast.runtime import quantize
from paddle_dynafast.train import qad


def test_the_simulated_product_equals_the_exported_int8_product(tmp_path):
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((24, 5)) * np.array([1, 5, 0.1, 2, 0.5])).astype("float32")
    x = (rng.standard_normal((3, 7, 24)) + 0.3).astype("float32")
    x[1, 2] *= 40  # an outlier token: its own scale, the others unchanged
    x[2, 4] = 0.0  # an all-zero token
    exported = one_quantized_product(tmp_path, weight, "token")(x)
    simulated = paddle.matmul(qad.fake_quant_tokens(paddle.to_tensor(x)),
                              qad.fake_quant_weight(paddle.to_tensor(weight))).numpy()
    np.testing.assert_allclose(simulated, exported, rtol=1e-5, atol=1e-4 * np.abs(exported).max())
    assert not np.allclose(simulated, x @ weight, atol=1e-3)  # the rounding is there
    # the weight's levels are quantize_weight's 7-bit integers
    q, scale = quantize.quantize_weight(weight, quantize.WEIGHT_BITS["token"])
    np.testing.assert_allclose(qad.fake_quant_weight(paddle.to_tensor(weight)).numpy(), q * scale, rtol=1e-6)


def test_gradients_pass_straight_through_the_rounding():
    rng = np.random.default_rng(1)
    x = paddle.to_tensor(rng.standard_normal((4, 6)).astype("float32"), stop_gradient=False)
    w = paddle.to_tensor(rng.standard_normal((6, 3)).astype("float32"), stop_gradient=False)
    qad.fake_quant_tokens(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((4, 6), "float32"))
    (qad.fake_quant_weight(w) * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((6, 3), 2, "float32"))


def test_the_simulation_holds_inside_its_block_only(tiny_model):
    layer = Probabilities(tiny_model)
    layer.eval()
    ids = paddle.to_tensor(np.array([[2, 5, 7, 9, 3], [2, 8, 3, 0, 0]], dtype="int64"))
    types = paddle.zeros_like(ids)
    linears = [m for m in layer.sublayers() if isinstance(m, nn.Linear)]
    before = layer(ids, types).numpy()
    with qad.fake_quantized(linears):
        inside = layer(ids, types).numpy()
    after = layer(ids, types).numpy()
    np.testing.assert_array_equal(after, before)
    assert 1e-7 < np.abs(inside - before).max() < 0.1
    assert all("forward" not in vars(linear) for linear in linears)


def _simulated_kl(layer, linears, batches, reference, bits):
    """Mean KL(float32 || simulated int8) of ``layer``'s probabilities over ``batches``."""
    with paddle.no_grad(), qad.fake_quantized(linears, bits):
        probs = [layer(paddle.to_tensor(ids), paddle.to_tensor(types)).numpy() for ids, types in batches]
    return float(np.mean([(r * (np.log(r) - np.log(q))).sum(-1).mean() for r, q in zip(reference, probs)]))


def test_distillation_brings_int8_closer_to_float32_and_moves_only_the_products(tiny_model):
    layer = Probabilities(tiny_model)
    layer.eval()
    rng = np.random.default_rng(2)
    batches = [(rng.integers(5, 99, size=(8, 12)).astype("int64"), np.zeros((8, 12), "int64")) for _ in range(2)]
    linears = [m for m in layer.sublayers() if isinstance(m, nn.Linear)]
    others = {name: p.numpy().copy() for name, p in layer.named_parameters()
              if not any(p is linear.weight for linear in linears)}
    weights = [linear.weight.numpy().copy() for linear in linears]
    with paddle.no_grad():
        reference = [layer(paddle.to_tensor(ids), paddle.to_tensor(types)).numpy() for ids, types in batches]
    bits = 4  # coarse enough for the tiny model's int8 error to be far above float32's noise
    before = _simulated_kl(layer, linears, batches, reference, bits)
    first = _simulated_kl(layer, linears, batches[:1], reference[:1], bits)
    history = qad.distill_quantized(layer, layer, linears, batches, steps=40, lr=1e-4, bits=bits, are_logits=False)
    after = _simulated_kl(layer, linears, batches, reference, bits)
    assert len(history["loss"]) == 40 and history["loss"][0] == pytest.approx(first, rel=1e-3)  # the loss is that KL
    assert after < 0.3 * before, (before, after)
    for name, value in others.items():  # biases, LayerNorm, embeddings untouched
        np.testing.assert_array_equal(dict(layer.named_parameters())[name].numpy(), value)
    assert all(not np.array_equal(linear.weight.numpy(), w) for linear, w in zip(linears, weights))
    assert all(p.stop_gradient is False for p in layer.parameters())  # trainable again, as before


def test_nothing_to_train_is_an_error(tiny_model):
    layer = Probabilities(tiny_model)
    batch = [(np.array([[2, 5, 3]], "int64"), np.zeros((1, 3), "int64"))]
    with pytest.raises(ValueError, match="steps must be >= 1"):
        qad.distill_quantized(layer, layer, [nn.Linear(2, 2)], batch, steps=0)
    with pytest.raises(ValueError, match="no batches"):
        qad.distill_quantized(layer, layer, [nn.Linear(2, 2)], [], steps=1)
    with pytest.raises(ValueError, match="no nn.Linear"):
        qad.distill_quantized(layer, layer, [], batch, steps=1)
