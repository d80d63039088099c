"""The head-mask forward: all ones equals the unpatched model, a zeroed head as the NumPy reference, gradients, restored after exit and after an exception, errors."""
import numpy as np
import paddle
import pytest
from helpers import numpy_bert, random_ids, tiny_hf_weights

from paddle_dynafast.model.forward import head_mask_forward
from paddle_dynafast.model.loading import load_classifier


def _logits(model, ids, **kwargs):
    return model(paddle.to_tensor(ids), **kwargs).numpy()


def test_all_ones_head_mask_equals_unpatched(tiny_model):
    ids = random_ids(np.random.default_rng(0), 4, 10, pad_from=[10, 3, 7, 5])
    before = _logits(tiny_model, ids)
    with head_mask_forward(tiny_model) as model:
        np.testing.assert_allclose(_logits(model, ids, head_mask=paddle.ones([2, 4])), before, atol=1e-6)
        np.testing.assert_allclose(_logits(model, ids), before, atol=1e-6)


def test_zeroed_head_changes_output_as_the_reference_does(tiny_hf_dir):
    weights = tiny_hf_weights(seed=0)
    model = load_classifier(tiny_hf_dir, num_labels=3).model
    ids = random_ids(np.random.default_rng(5), 3, 8, pad_from=[8, 6, 4])
    mask = np.ones((2, 4), "float32")
    mask[1, 2] = 0.0
    with head_mask_forward(model):
        full, _ = model.bert(paddle.to_tensor(ids))
        masked, _ = model.bert(paddle.to_tensor(ids), head_mask=paddle.to_tensor(mask))
    assert np.abs(masked.numpy() - full.numpy()).max() > 1e-2
    np.testing.assert_allclose(masked.numpy(), numpy_bert(weights, ids, head_mask=mask)[0], atol=1e-5)


def test_one_dimensional_head_mask_applies_to_every_layer(tiny_model):
    ids = random_ids(np.random.default_rng(6), 2, 7)
    with head_mask_forward(tiny_model) as model:
        a = _logits(model, ids, head_mask=paddle.to_tensor([1.0, 0.0, 1.0, 1.0]))
        b = _logits(model, ids, head_mask=paddle.to_tensor([[1.0, 0.0, 1.0, 1.0]] * 2))
    np.testing.assert_array_equal(a, b)


def test_head_mask_receives_a_gradient(tiny_model):
    ids = random_ids(np.random.default_rng(1), 3, 6)
    head_mask = paddle.ones([2, 4])
    head_mask.stop_gradient = False
    with head_mask_forward(tiny_model) as model:
        logits = model(paddle.to_tensor(ids), head_mask=head_mask)
        paddle.nn.functional.cross_entropy(logits, paddle.to_tensor([0, 1, 2])).backward()
    grad = head_mask.grad.numpy()
    assert grad.shape == (2, 4) and np.all(np.isfinite(grad)) and np.abs(grad).min() > 0


def test_model_is_restored_after_exit_and_after_an_exception(tiny_model, tiny_hf_dir):
    ids = random_ids(np.random.default_rng(2), 2, 6)
    before = _logits(tiny_model, ids)
    other = load_classifier(tiny_hf_dir, num_labels=3).model
    with head_mask_forward(tiny_model):
        assert "forward" in tiny_model.__dict__ and "forward" in tiny_model.bert.__dict__
        assert "forward" not in other.__dict__ and "forward" not in other.bert.__dict__  # other instances untouched
    with pytest.raises(RuntimeError, match="boom"):
        with head_mask_forward(tiny_model):
            raise RuntimeError("boom")
    patched = [layer for layer in tiny_model.sublayers(include_self=True) if "forward" in layer.__dict__]
    assert patched == []
    np.testing.assert_array_equal(_logits(tiny_model, ids), before)
    with pytest.raises(TypeError, match="unexpected keyword argument 'head_mask'"):
        tiny_model(paddle.to_tensor(ids), head_mask=paddle.ones([2, 4]))


def test_head_mask_errors(tiny_model):
    with pytest.raises(TypeError, match="no PaddleNLP BertModel inside Linear"):
        with head_mask_forward(paddle.nn.Linear(2, 2)):
            pass
    with head_mask_forward(tiny_model) as model:
        with pytest.raises(ValueError, match=r"head_mask has shape \[3, 4\]; expected \[2, 4\] or \[4\]"):
            model(paddle.to_tensor(random_ids(np.random.default_rng(0), 1, 4)), head_mask=paddle.ones([3, 4]))
