"""The deployable adaptive model: loads from a distill directory, cuts every width, refuses what it is not."""
import numpy as np
import paddle
import pytest

from helpers import random_ids
from paddle_dynafast.model.loading import load_classifier
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.model.narrow import extract_submodel


def test_every_width_runs_its_cut_of_the_saved_backbone(tiny_dynafast_dir):
    model = DynaFastModel.load(tiny_dynafast_dir)
    assert model.widths == (1.0, 0.75, 0.5, 0.25) and model.labels == ["0", "1"]
    ids = paddle.to_tensor(random_ids(np.random.default_rng(1), 3, 8, pad_from=[8, 5, 3]))
    full = load_classifier(tiny_dynafast_dir).model
    for width in model.widths:
        adaptive = model.at(width)
        assert model.at(width) is adaptive  # built once
        expected = (full if width == 1.0 else extract_submodel(full, full.config, width))(ids).numpy()
        probs, exit_layer, _ = adaptive(ids, speed=0.0)
        np.testing.assert_allclose(probs.numpy(), paddle.nn.functional.softmax(paddle.to_tensor(expected)).numpy(),
                                   atol=1e-5)
        assert exit_layer.numpy().tolist() == [2, 2, 2]


def test_saved_branches_load_back_equal(tmp_path, tiny_dynafast_dir):
    model = DynaFastModel.load(tiny_dynafast_dir)
    import shutil

    copy = shutil.copytree(tiny_dynafast_dir, tmp_path / "copy")
    (copy / "branches.safetensors").unlink()
    model.save_branches(copy)
    again = DynaFastModel.load(copy)
    for (name, a), (_, b) in zip(model.branches.state_dict().items(), again.branches.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_what_it_is_not_is_named(tiny_dynafast_dir, tiny_supernet_dir):
    with pytest.raises(FileNotFoundError, match="has no branches.json: it is not a model with branches"):
        DynaFastModel.load(tiny_supernet_dir)
    with pytest.raises(ValueError, match=r"width 0.3 has no branches; this model has widths \[1.0, 0.75, 0.5, 0.25\]"):
        DynaFastModel.load(tiny_dynafast_dir).at(0.3)
    assert DynaFastModel.has_branches(tiny_dynafast_dir) and not DynaFastModel.has_branches(tiny_supernet_dir)
