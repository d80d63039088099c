"""FastBERT branches: the one-query attention equals full self-attention at [CLS]; shared and per-width sets;
FLOPs by hand."""
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_dynafast.config import BranchConfig
from paddle_dynafast.model.forward import MASK_VALUE
from paddle_dynafast.model.branches import Branches, FastBERTClassifier
from paddle_dynafast.model.flops import branch_flops

CONFIG = BranchConfig(cls_hidden_size=8, cls_num_attention_heads=2, dropout=0.0)


def test_one_query_equals_the_paper_s_full_self_attention_at_cls():
    paddle.seed(0)
    branch = FastBERTClassifier(12, 3, CONFIG)
    branch.eval()
    hidden = paddle.randn([2, 5, 12])  # [batch, seq, hidden]
    pad = paddle.to_tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], dtype="float32")
    mask = paddle.unsqueeze(pad * MASK_VALUE, axis=[1, 2])  # [batch, 1, 1, seq]
    narrow = paddle.tanh(branch.narrow(hidden))
    full = branch.attention(narrow, narrow, narrow, attn_mask=mask)  # every position, as the paper computes it
    expected = branch.logits(paddle.tanh(branch.prelogits(full[:, 0])))
    np.testing.assert_allclose(branch(hidden, mask).numpy(), expected.numpy(), atol=1e-5)


def test_shared_and_per_width_sets():
    shared = Branches(3, 12, 2, CONFIG, widths=(1.0, 0.5))
    assert len(shared.sets) == 1 and shared.at(1.0) is shared.at(0.5) and len(shared.at(0.5)) == 2
    per_width = Branches(3, 12, 2, CONFIG, widths=(1.0, 0.5), shared=False)
    assert per_width.at(1.0) is not per_width.at(0.5)
    with pytest.raises(KeyError, match=r"no branches for width 0.25; this model has widths \[1.0, 0.5\]"):
        per_width.at(0.25)
    again = Branches.from_description(per_width.describe())
    assert again.describe() == per_width.describe() and set(again.state_dict()) == set(per_width.state_dict())
    with pytest.raises(ValueError, match="a model of 1 layer"):
        Branches(1, 12, 2, CONFIG)


def _pooled_branch(kind: str):
    """A pooling branch (hidden 12, 3 labels, no dropout), its config, and hidden states [2, 5, 12]."""
    paddle.seed(1)
    config = BranchConfig(kind=kind, cls_hidden_size=8, dropout=0.0)
    branch = Branches(2, 12, 3, config).at(1.0)[0]
    branch.eval()
    return branch, config, np.random.default_rng(0).standard_normal((2, 5, 12)).astype("float32")


def _pooled_numpy(branch, pooled: np.ndarray) -> np.ndarray:
    """The branch's head in NumPy: tanh(dense(pooled)), then the logits."""
    return np.tanh(pooled @ branch.dense.weight.numpy() + branch.dense.bias.numpy()) \
        @ branch.logits.weight.numpy() + branch.logits.bias.numpy()


def test_cls_branch_against_numpy():
    branch, config, hidden = _pooled_branch("cls")
    expected = _pooled_numpy(branch, hidden[:, 0])
    np.testing.assert_allclose(branch(paddle.to_tensor(hidden), None).numpy(), expected, atol=1e-5)
    assert branch_flops(12, 3, config, tokens=5) == branch_flops(12, 3, config, tokens=50) == 2 * 12 * 8 + 2 * 8 * 3
    again = Branches.from_description(Branches(2, 12, 3, config).describe())
    assert again.config == config and type(again.at(1.0)[0]).__name__ == "PooledClassifier"
    with pytest.raises(ValueError, match=r"branch kind 'lstm' is not one of \['attention', 'mean', 'cls'\]"):
        BranchConfig(kind="lstm")


def test_pooling_branches_export_equal_to_dygraph(tmp_path, tiny_dynafast_dir, toy_data):
    import shutil

    from helpers import texts_of
    from paddle_dynafast.model.dynafast import DynaFastModel
    from paddle_dynafast.config import ExportConfig
    from paddle_dynafast.runtime.export import export_model
    from paddle_dynafast.runtime.predictor import Predictor

    directory = Path(shutil.copytree(tiny_dynafast_dir, tmp_path / "cls"))
    model = DynaFastModel.load(directory)
    paddle.seed(2)
    branches = Branches(2, 32, 2, BranchConfig(kind="mean", cls_hidden_size=16), widths=model.widths)
    for branch in branches.at(1.0):  # confident, so some samples leave early
        branch.logits.weight.set_value(branch.logits.weight.numpy() * 4)
    for name in ("branches.safetensors", "branches.json"):
        (directory / name).unlink()
    DynaFastModel(model.backbone, model.tokenizer, branches, model.labels).save_branches(directory)
    exported = export_model(ExportConfig(directory, tmp_path / "export", width=0.5))
    texts = texts_of(toy_data, 24)
    seen = set()
    for speed in (0.0, 0.02, 0.1, 0.3, 0.5):
        got = Predictor(exported, "onnxruntime", threads=1).predict(texts, speed=speed)
        expected = Predictor(exported, "dygraph").predict(texts, speed=speed)
        np.testing.assert_allclose(got.probs, expected.probs, atol=1e-5)
        assert got.exit_layer.tolist() == expected.exit_layer.tolist()
        seen.add(tuple(sorted(set(got.exit_layer.tolist()))))
    assert (1, 2) in seen, seen  # some speed splits the batch


def test_mean_branch_pools_only_the_kept_tokens():
    branch, config, hidden = _pooled_branch("mean")
    pad = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], "float32")
    mask = paddle.unsqueeze(paddle.to_tensor(pad) * MASK_VALUE, axis=[1, 2])
    expected = _pooled_numpy(branch, np.stack([hidden[0].mean(0), hidden[1, :3].mean(0)]))
    np.testing.assert_allclose(branch(paddle.to_tensor(hidden), mask).numpy(), expected, atol=1e-5)
    assert branch_flops(12, 3, config, tokens=5) == 2 * 5 * 12 + 2 * 12 * 8 + 2 * 8 * 3
