"""The batched exit loop: speed 0 is the final classifier, speed 1 exits at once, batched equals one by one."""
import math

import numpy as np
import paddle
import pytest

from helpers import random_ids
from paddle_dynafast.config import BranchConfig
from paddle_dynafast.model import exit as exits
from paddle_dynafast.model.branches import Branches
from paddle_dynafast.model.narrow import extract_submodel


def _adaptive(model, width=1.0, seed=0, sharpness=8.0):
    """Random branches made confident (large logits), so speeds in (0, 1) give a mix of exits."""
    paddle.seed(seed)
    branches = Branches(2, 32, 3, BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), widths=(width,))
    for branch in branches.at(width):
        branch.logits.weight.set_value(branch.logits.weight.numpy() * sharpness)
    backbone = model if width == 1.0 else extract_submodel(model, model.config, width)
    adaptive = exits.AdaptiveClassifier(backbone, branches.at(width))
    adaptive.eval()
    return adaptive


def _batch(seed=0, batch=6, seq=10):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, seq + 1, size=batch)
    lengths[0] = seq
    return paddle.to_tensor(random_ids(rng, batch, seq, pad_from=lengths))


def test_normalized_entropy_against_numpy():
    p = np.array([[0.5, 0.5], [1.0, 0.0], [0.9, 0.1]], "float32")
    ref = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1) / math.log(2)
    np.testing.assert_allclose(exits.normalized_entropy(paddle.to_tensor(p)).numpy(), ref, atol=1e-6)
    assert exits.normalized_entropy(paddle.to_tensor([[1 / 6] * 6])).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"speed 1.5 is not in \[0, 1\]"):
        exits.check_speed(1.5)
    with pytest.raises(ValueError, match=r"speed -0.1 is not in \[0, 1\]"):
        exits.check_speed(-0.1)


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25])
def test_speed_zero_is_exactly_the_final_classifier(tiny_model, width):
    adaptive = _adaptive(tiny_model, width)
    ids = _batch()
    probs, exit_layer, uncertainty = adaptive(ids, speed=0.0)
    final = paddle.nn.functional.softmax(adaptive.backbone(ids), axis=-1).numpy()
    np.testing.assert_allclose(probs.numpy(), final, atol=1e-6)
    assert exit_layer.numpy().tolist() == [2] * 6 and (uncertainty.numpy() >= 0).all()


def test_speed_one_exits_every_sample_after_the_first_layer(tiny_model):
    adaptive = _adaptive(tiny_model)
    ids = _batch(1)
    probs, exit_layer, uncertainty = adaptive(ids, speed=1.0)
    assert exit_layer.numpy().tolist() == [1] * 6
    first = paddle.nn.functional.softmax(adaptive.layer_logits(ids)[:, 0], axis=-1).numpy()
    np.testing.assert_allclose(probs.numpy(), first, atol=1e-6)
    assert (uncertainty.numpy()[:, 1] == exits.NOT_RUN).all() and (uncertainty.numpy()[:, 0] >= 0).all()


def test_speed_one_lets_a_uniform_prediction_leave_too(tiny_model):
    # exactly uniform: the normalised entropy is 1; nearly uniform: float32 rounding put it above 1 before the bound
    near = np.float32(0.5) + np.float32(2 ** -24)
    p = np.array([[0.5, 0.5], [near, np.float32(1) - near], [1 / 3, 2 / 3]], "float32")
    raw = -(p * np.log(p)).sum(-1) / np.float32(math.log(2))
    assert raw[0] == 1.0 and raw[1] >= 1.0  # what the bound is for
    u = exits.normalized_entropy(paddle.to_tensor(p)).numpy()
    assert (u < 1.0).all() and u[0] == u[1] == np.float32(exits.MAX_UNCERTAINTY) and u[2] == pytest.approx(raw[2])
    layers = np.stack([p, p[::-1]], axis=1)  # [samples, layers, labels]
    _, exit_layer, uncertainty = exits.simulate_exits(layers, 1.0)
    assert exit_layer.tolist() == [1, 1, 1] and (uncertainty[:, 0] == u).all()
    # the loop itself: branches that predict uniformly (zero logits) still leave at speed 1
    adaptive = _adaptive(tiny_model)
    for branch in adaptive.branches:
        branch.logits.weight.set_value(np.zeros(branch.logits.weight.shape, "float32"))
        branch.logits.bias.set_value(np.zeros(branch.logits.bias.shape, "float32"))
    _, exit_layer, _ = adaptive(_batch(1), speed=1.0)
    assert exit_layer.numpy().tolist() == [1] * 6


@pytest.mark.parametrize("speed", [0.2, 0.5, 0.8])
def test_batched_equals_one_by_one(tiny_model, speed):
    adaptive = _adaptive(tiny_model, seed=3)
    for seed in range(3):
        ids = _batch(seed + 10, batch=8)
        probs, exit_layer, uncertainty = (t.numpy() for t in adaptive(ids, speed=speed))
        for row in range(8):
            length = int((ids[row].numpy() != 0).sum())
            p, e, u = (t.numpy() for t in adaptive(ids[row:row + 1, :length], speed=speed))
            assert e[0] == exit_layer[row] and p.argmax() == probs[row].argmax()
            np.testing.assert_allclose(p[0], probs[row], atol=1e-5)
            np.testing.assert_allclose(u[0], uncertainty[row], atol=1e-5)


def test_mixed_exits_and_simulation_agree(tiny_model):
    adaptive = _adaptive(tiny_model, seed=3)
    ids = _batch(5, batch=16)
    layer_probs = paddle.nn.functional.softmax(adaptive.layer_logits(ids), axis=-1).numpy()
    seen = set()
    for speed in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0):
        probs, exit_layer, uncertainty = (t.numpy() for t in adaptive(ids, speed=speed))
        sim_probs, sim_exit, sim_u = exits.simulate_exits(layer_probs, speed)
        np.testing.assert_array_equal(sim_exit, exit_layer)
        np.testing.assert_allclose(sim_probs, probs, atol=1e-6)
        np.testing.assert_allclose(sim_u, uncertainty, atol=1e-6)
        seen.add(tuple(sorted(set(exit_layer.tolist()))))
    assert (1, 2) in seen  # some speed really splits the batch


def test_all_exit_early_skips_the_remaining_layers(tiny_model, monkeypatch):
    adaptive = _adaptive(tiny_model)
    calls = []
    original = exits.encoder_layer_forward

    def counting(layer, hidden, mask, head_mask=None):
        calls.append(hidden.shape[0])
        return original(layer, hidden, mask, head_mask)

    monkeypatch.setattr(exits, "encoder_layer_forward", counting)
    adaptive(_batch(2, batch=5), speed=1.0)
    assert calls == [5]  # layer 2 never ran
    calls.clear()
    adaptive(_batch(2, batch=5), speed=0.0)
    assert calls == [5, 5]


def test_branch_count_must_match_layers(tiny_model):
    with pytest.raises(ValueError, match="3 branches for a backbone of 2 layers; need 1"):
        exits.AdaptiveClassifier(tiny_model, [paddle.nn.Linear(1, 1)] * 3)


def test_no_compaction_on_a_layer_where_nobody_leaves(tiny_model, monkeypatch):
    adaptive = _adaptive(tiny_model)
    calls = []
    for name in ("gather", "nonzero"):
        original = getattr(paddle, name)
        monkeypatch.setattr(paddle, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    adaptive(_batch(4, batch=5), speed=0.0)  # nobody can leave early
    assert calls == []
    adaptive(_batch(4, batch=5), speed=1.0)  # everyone leaves after layer 1
    assert "nonzero" in calls
