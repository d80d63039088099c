"""The distillation losses against NumPy, and no gradient to the teacher."""
import numpy as np
import paddle

import pytest

from paddle_dynafast.train.losses import kl_divergence, labelled_cross_entropy, soft_cross_entropy


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _logits(seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((5, 3)) * 3).astype("float32")


def test_soft_cross_entropy_against_numpy():
    s, t = _logits(0), _logits(1)
    expected = -(np.exp(_log_softmax(t)) * _log_softmax(s)).sum(-1).mean()
    got = soft_cross_entropy(paddle.to_tensor(s), paddle.to_tensor(t)).item()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_kl_divergence_against_numpy_student_first():
    s, t = _logits(2), _logits(3)
    log_s, log_t = _log_softmax(s), _log_softmax(t)
    expected = (np.exp(log_s) * (log_s - log_t)).sum(-1).mean()  # KL(student || teacher), FastBERT eq. 6
    got = kl_divergence(paddle.to_tensor(s), paddle.to_tensor(t)).item()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert abs(kl_divergence(paddle.to_tensor(s), paddle.to_tensor(s)).item()) < 1e-6


def test_only_the_student_gets_a_gradient():
    student, teacher = paddle.to_tensor(_logits(4), stop_gradient=False), paddle.to_tensor(_logits(5),
                                                                                          stop_gradient=False)
    (soft_cross_entropy(student, teacher) + kl_divergence(student, teacher)).backward()
    assert student.grad is not None and float(paddle.abs(student.grad).sum()) > 0
    assert teacher.grad is None


def test_kl_with_temperature_against_numpy():
    s, t = _logits(6), _logits(7)
    log_s, log_t = _log_softmax(s / 2.0), _log_softmax(t / 2.0)
    expected = 4.0 * (np.exp(log_s) * (log_s - log_t)).sum(-1).mean()  # T^2 KL of the softened distributions
    got = kl_divergence(paddle.to_tensor(s), paddle.to_tensor(t), temperature=2.0).item()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        kl_divergence(paddle.to_tensor(s), paddle.to_tensor(t), temperature=0)


def test_labelled_cross_entropy_skips_unlabelled_rows():
    logits = _logits(8)
    labels = np.array([2, -1, 0, -1, 1])
    rows = [0, 2, 4]
    expected = -_log_softmax(logits)[rows, labels[rows]].mean()
    got = labelled_cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(labels)).item()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert labelled_cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(-np.ones(5, dtype="int64"))).item() == 0
