"""Head and neuron importance, and reordering by it."""
import numpy as np
import paddle
import pytest

from helpers import random_ids
from paddle_dynafast.train import importance
from paddle_dynafast.model.forward import head_mask_forward


def _batches(seed=0, n=3):
    rng = np.random.default_rng(seed)
    return [{"input_ids": paddle.to_tensor(random_ids(rng, 4, 9, pad_from=[9, 6, 4, 8])),
             "token_type_ids": paddle.zeros([4, 9], dtype="int64"),
             "labels": paddle.to_tensor(rng.integers(0, 3, size=4).astype("int64"))} for _ in range(n)]


def _logits(model, batch):
    return model(batch["input_ids"], token_type_ids=batch["token_type_ids"]).numpy()


def test_reordering_leaves_outputs_unchanged(tiny_model):
    batch = _batches()[0]
    before = _logits(tiny_model, batch)
    rng = np.random.default_rng(1)
    scores = importance.Importance(heads=rng.random((2, 4)), neurons=rng.random((2, 37)))
    assert not np.array_equal(scores.head_order()[0], np.arange(4))
    q_before = tiny_model.bert.encoder.layers[0].self_attn.q_proj.weight.numpy().copy()
    importance.reorder(tiny_model, scores)
    assert not np.allclose(tiny_model.bert.encoder.layers[0].self_attn.q_proj.weight.numpy(), q_before)
    np.testing.assert_allclose(_logits(tiny_model, batch), before, atol=1e-5)


def test_useless_head_and_dead_neuron_are_ranked_last(tiny_model):
    layer0, layer1 = tiny_model.bert.encoder.layers
    d = layer0.self_attn.head_dim
    for layer, head in ((layer0, 2), (layer1, 0)):  # zero the head's values: its output is always 0
        v = layer.self_attn.v_proj
        w, b = v.weight.numpy(), v.bias.numpy()
        w[:, head * d:(head + 1) * d] = 0
        b[head * d:(head + 1) * d] = 0
        v.weight.set_value(w)
        v.bias.set_value(b)
    w1, b1, w2 = layer1.linear1.weight.numpy(), layer1.linear1.bias.numpy(), layer1.linear2.weight.numpy()
    w1[:, 5], b1[5], w2[5, :] = 0, 0, 0  # neuron 5 of layer 1 is dead
    layer1.linear1.weight.set_value(w1)
    layer1.linear1.bias.set_value(b1)
    layer1.linear2.weight.set_value(w2)
    scores = importance.compute_importance(tiny_model, _batches())
    assert scores.heads[0, 2] == 0 and scores.heads[1, 0] == 0 and scores.heads.min(axis=1).tolist() == [0, 0]
    assert scores.head_order()[0, -1] == 2 and scores.head_order()[1, -1] == 0
    assert scores.neurons[1, 5] == 0 and scores.neuron_order()[1, -1] == 5
    assert (scores.heads[0] > 0).sum() == 3


def test_head_importance_is_the_mask_gradient(tiny_model):
    """Against central finite differences of the loss in each head-mask entry."""
    batch = _batches(seed=4, n=1)[0]
    scores = importance.compute_importance(tiny_model, [batch])
    tiny_model.eval()

    def loss(mask):
        with head_mask_forward(tiny_model) as model, paddle.no_grad():
            logits = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                           head_mask=paddle.to_tensor(mask.astype("float32")))
            return float(paddle.nn.functional.cross_entropy(logits, batch["labels"]))

    eps = 1e-2
    for layer, head in ((0, 1), (1, 3)):
        plus, minus = np.ones((2, 4)), np.ones((2, 4))
        plus[layer, head] += eps
        minus[layer, head] -= eps
        numeric = abs(loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(scores.heads[layer, head], numeric, rtol=2e-2, atol=1e-5)


def test_importance_leaves_no_gradients_and_needs_batches(tiny_model):
    importance.compute_importance(tiny_model, _batches(n=1))
    assert all(p.grad is None or not np.any(p.grad.numpy()) for p in tiny_model.parameters())
    with pytest.raises(ValueError, match="got no batches"):
        importance.compute_importance(tiny_model, [])


def test_permutations_match_numpy_indexing():
    rng = np.random.default_rng(0)
    q, k, v = (rng.random((6, 8)) for _ in range(3))
    out, bq, bk, bv = rng.random((8, 6)), rng.random(8), rng.random(8), rng.random(8)
    order = np.array([3, 0, 2, 1])  # 4 heads of 2
    cols = [6, 7, 0, 1, 4, 5, 2, 3]
    got = importance.permute_attention(q, k, v, out, bq, bk, bv, order, head_dim=2)
    for a, b in zip(got, (q[:, cols], k[:, cols], v[:, cols], out[cols], bq[cols], bk[cols], bv[cols])):
        np.testing.assert_array_equal(a, b)
    w1, b1, w2 = rng.random((6, 5)), rng.random(5), rng.random((5, 6))
    got = importance.permute_ffn(w1, b1, w2, np.array([4, 0, 1, 3, 2]))
    np.testing.assert_array_equal(got[0], w1[:, [4, 0, 1, 3, 2]])
    np.testing.assert_array_equal(got[2], w2[[4, 0, 1, 3, 2]])
