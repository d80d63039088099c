"""The narrow fixed-width sub-model: equal to the supernet at its width, saved and reloaded by PaddleNLP."""
import numpy as np
import paddle
import pytest

from helpers import WIDTHS, random_ids, supernet_at
from paddle_dynafast.model import narrow
from paddle_dynafast.model.flops import BertShape
from paddle_dynafast.train import supernet


@pytest.fixture()
def ids():
    return paddle.to_tensor(random_ids(np.random.default_rng(0), 4, 10, pad_from=[10, 7, 3, 9]))


@pytest.mark.parametrize("width", WIDTHS)
def test_exported_submodel_equals_the_supernet(tmp_path, tiny_model, ids, width):
    ofa = supernet.make_ofa(supernet.convert_to_supernet(tiny_model, WIDTHS))
    expected = supernet_at(ofa, width, ids)
    sub = narrow.extract_submodel(ofa.model, tiny_model.config, width)
    np.testing.assert_allclose(sub(ids).numpy(), expected, atol=1e-5)  # PaddleNLP's own forward
    sub.save_pretrained(str(tmp_path / "sub"))
    reloaded = narrow.NarrowBertForSequenceClassification.from_pretrained(str(tmp_path / "sub"))
    reloaded.eval()
    np.testing.assert_allclose(reloaded(ids).numpy(), expected, atol=1e-5)
    heads, neurons, h, layers = int(4 * width), int(37 * width), 32, 2
    per_layer = 3 * (h * heads * 8 + heads * 8) + heads * 8 * h + h + (h * neurons + neurons) + neurons * h + h + 4 * h
    embeddings = (99 + 64 + 2) * h + 2 * h
    assert narrow.count_parameters(reloaded) == embeddings + layers * per_layer + (h * h + h) + (h * 3 + 3)


def test_narrow_weights_keep_the_first_heads_and_neurons():
    shape = BertShape(hidden_size=4, num_layers=1, num_heads=2, head_dim=2, intermediate_size=6, num_labels=2)
    rng = np.random.default_rng(0)
    state = {"l.self_attn.q_proj.weight": rng.random((4, 4)), "l.self_attn.q_proj.bias": rng.random(4),
             "l.self_attn.out_proj.weight": rng.random((4, 4)), "l.self_attn.out_proj.bias": rng.random(4),
             "l.linear1.weight": rng.random((4, 6)), "l.linear1.bias": rng.random(6),
             "l.linear2.weight": rng.random((6, 4)), "l.linear2.bias": rng.random(4)}
    out = narrow.narrow_weights(state, shape, 0.5)
    np.testing.assert_array_equal(out["l.self_attn.q_proj.weight"], state["l.self_attn.q_proj.weight"][:, :2])
    np.testing.assert_array_equal(out["l.self_attn.q_proj.bias"], state["l.self_attn.q_proj.bias"][:2])
    np.testing.assert_array_equal(out["l.self_attn.out_proj.weight"], state["l.self_attn.out_proj.weight"][:2])
    np.testing.assert_array_equal(out["l.self_attn.out_proj.bias"], state["l.self_attn.out_proj.bias"])
    np.testing.assert_array_equal(out["l.linear1.weight"], state["l.linear1.weight"][:, :3])
    np.testing.assert_array_equal(out["l.linear2.weight"], state["l.linear2.weight"][:3])
    np.testing.assert_array_equal(out["l.linear2.bias"], state["l.linear2.bias"])


@pytest.mark.parametrize("widths, message", [
    ((1.0, 1.3), "width 1.3 is not in (0, 1]"),
    ((1.0, 0.3), "width 0.3 keeps 1.2 of 4 heads; the head count must be whole"),
    ((0.5, 0.25), "must include 1.0"),
    ((1.0, 0.5, 0.5), "repeat a value"),
])
def test_bad_widths(tiny_model, widths, message):
    with pytest.raises(ValueError) as error:
        narrow.check_widths(widths, BertShape.from_config(tiny_model.config))
    assert message in str(error.value)
