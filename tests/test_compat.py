"""Each shim in compat.py: the upstream break without it, the fix with it, and an error when it matches nothing."""
import inspect

import numpy as np
import paddle
import pytest

from paddle_dynafast.train import compat


def test_super_layer_norm_shim():
    from paddleslim.nas.ofa.layers import SuperLayerNorm

    with compat.paddleslim_constructors():  # as the library builds them (Paddle 3.3 needs it)
        norm = SuperLayerNorm(8, epsilon=1e-12)
    norm.weight.set_value(np.linspace(0.5, 1.5, 8).astype("float32"))
    norm.bias.set_value(np.linspace(-1, 1, 8).astype("float32"))
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, 8)).astype("float32"))
    with pytest.raises(ValueError, match="unpack"):  # the upstream break on Paddle >= 3.0
        norm(x)
    holder = paddle.nn.Sequential(norm)
    assert compat.fix_super_layer_norms(holder) == 1
    expected = paddle.nn.functional.layer_norm(x, [8], weight=norm.weight, bias=norm.bias, epsilon=1e-12)
    np.testing.assert_allclose(norm(x).numpy(), expected.numpy(), atol=1e-6)
    # narrower input uses the first features of weight and bias, as PaddleSlim intends
    narrow = x[..., :6]
    expected = paddle.nn.functional.layer_norm(narrow, [6], weight=norm.weight[:6], bias=norm.bias[:6], epsilon=1e-12)
    np.testing.assert_allclose(norm(narrow).numpy(), expected.numpy(), atol=1e-6)
    assert norm.cur_config == {"prune_dim": 6}


def test_super_layer_norm_shim_matches_nothing():
    with pytest.raises(ValueError, match="matched no SuperLayerNorm inside Sequential"):
        compat.fix_super_layer_norms(paddle.nn.Sequential(paddle.nn.LayerNorm(4)))


def _paddle_at_least(major, minor):
    return tuple(int(x) for x in paddle.__version__.split(".")[:2]) >= (major, minor)


def test_paddleslim_constructor_shim():
    from paddleslim.nas.ofa.layers import SuperEmbedding, SuperLayerNorm

    original = (SuperEmbedding.__dict__["__init__"], SuperLayerNorm.__dict__["__init__"])
    if _paddle_at_least(3, 2):  # the upstream break on the pinned Paddle
        with pytest.raises(TypeError, match="positional arguments"):
            SuperEmbedding(10, 4, candidate_config={"expand_ratio": [0.5, 1.0]})
    with compat.paddleslim_constructors():
        emb = SuperEmbedding(10, 4, candidate_config={"expand_ratio": [0.5, 1.0]}, padding_idx=0,
                             weight_attr=paddle.ParamAttr(initializer=paddle.nn.initializer.Constant(0.5)))
        norm = SuperLayerNorm(6, epsilon=1e-12)
    assert (emb._sparse, emb._padding_idx, emb.base_output_dim, emb.expand_ratio) == (False, 0, 4, [0.5, 1.0])
    np.testing.assert_array_equal(emb.weight.numpy()[1], [0.5] * 4)  # weight_attr reached nn.Embedding
    np.testing.assert_array_equal(emb(paddle.to_tensor([[1]]), expand_ratio=0.5).numpy(), [[[0.5, 0.5]]])
    assert norm._epsilon == 1e-12 and norm.cur_config is None and list(norm.weight.shape) == [6]
    assert (SuperEmbedding.__dict__["__init__"], SuperLayerNorm.__dict__["__init__"]) == original


def test_paddleslim_constructor_shim_restores_after_an_error():
    from paddleslim.nas.ofa.layers import SuperEmbedding

    original = SuperEmbedding.__dict__["__init__"]
    with pytest.raises(RuntimeError):
        with compat.paddleslim_constructors():
            raise RuntimeError("convert failed")
    assert SuperEmbedding.__dict__["__init__"] is original


def test_the_embedding_shim_shares_no_default_between_layers():
    """PaddleSlim's signature has ``candidate_config={}``, one dict shared by every layer built without one; the shim
    takes None and gives each layer a dict of its own, as a layer built with ``{}`` gets."""
    from paddleslim.nas.ofa.layers import SuperEmbedding

    with compat.paddleslim_constructors():
        parameters = inspect.signature(SuperEmbedding.__init__).parameters
        a, b = SuperEmbedding(10, 4), SuperEmbedding(10, 4)
        given = SuperEmbedding(10, 4, {})
    assert not [p.name for p in parameters.values() if isinstance(p.default, (dict, list, set))]
    assert a.candidate_config == b.candidate_config == given.candidate_config == {}
    assert a.candidate_config is not b.candidate_config
    a.candidate_config["expand_ratio"] = [0.5, 1.0]
    assert b.candidate_config == {}
    assert (a.expand_ratio, a.base_output_dim, a._padding_idx) == (None, 4, None)
