"""Stage 3: self-distilled branches at every width, with the backbone frozen bit for bit."""
import json

import numpy as np
import paddle
import pytest
from safetensors.numpy import load_file

from paddle_dynafast import data
from paddle_dynafast.config import BranchConfig, DataConfig, SelfDistillConfig, TrainConfig
from paddle_dynafast.model.branches import Branches
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.model.predict import layer_probabilities
from paddle_dynafast.train import distill, loop


def _config(tmp_path, model_dir, data_dir, output="distill", **kwargs):
    kwargs.setdefault("train", TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=3))
    return SelfDistillConfig(output_dir=str(tmp_path / output), model_dir=str(model_dir),
                             data=DataConfig(data_dir=str(data_dir), max_seq_len=16),
                             branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), **kwargs)


def _weights(path):
    return load_file(str(path))


@pytest.mark.parametrize("shared", [True, False])
def test_branches_learn_and_the_backbone_stays_bit_identical(tmp_path, toy_data, tiny_supernet_dir, shared):
    before = _weights(tiny_supernet_dir / "model.safetensors")
    result = distill.self_distill(_config(tmp_path, tiny_supernet_dir, toy_data, shared_branches=shared))
    out = tmp_path / "distill"
    after = _weights(out / "model.safetensors")
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    model = DynaFastModel.load(out)
    assert model.widths == (1.0, 0.75, 0.5, 0.25) and model.branches.shared is shared
    assert len(model.branches.sets) == (1 if shared else 4)
    # trained branches agree with their width's final classifier far better than fresh ones
    trained = result.metrics["layers"]["dev"]["0.5"]["kl_to_final"][0]
    paddle.seed(0)
    fresh = DynaFastModel(model.backbone, model.tokenizer, Branches(
        2, 32, 2, BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), widths=model.widths, shared=shared),
        model.labels)
    features = data.encode(data.load_splits(toy_data)["dev"], model.tokenizer, 16, model.labels)
    loader = data.make_loader(features, 0, 64, shuffle=False)
    untrained = distill.per_layer_report(layer_probabilities(fresh.at(0.5), loader), None)["kl_to_final"][0]
    assert trained < 0.5 * untrained, (trained, untrained)
    assert result.metrics["layers"]["test"]["1.0"]["accuracy"][-1] == pytest.approx(
        json.loads((tiny_supernet_dir / "metrics.json").read_text())["widths"]["1.0"]["test_accuracy"])


def test_distillation_needs_no_labels(tmp_path, toy_data, tiny_teacher_dir):
    texts = [line.split(" ", 1)[1] for line in (toy_data / "train.txt").read_text().splitlines()]
    (tmp_path / "raw.txt").write_text("\n".join(texts[:50]) + "\n\n")
    result = distill.self_distill(_config(tmp_path, tiny_teacher_dir, toy_data, unlabeled_file=str(tmp_path / "raw.txt"),
                                          train=TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=3)))
    stage = json.loads((tmp_path / "distill" / "stage.json").read_text())
    assert stage["num_examples"]["train"] == 250 and stage["widths"] == [1.0]  # a plain classifier: width 1.0 only
    assert result.metrics["train_steps"] == 16


def test_labels_objective_and_bad_inputs(tmp_path, toy_data, tiny_teacher_dir, tiny_supernet_dir):
    result = distill.self_distill(_config(tmp_path, tiny_teacher_dir, toy_data, objective="labels",
                                          train=TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=3)))
    assert result.metrics["layers"]["dev"]["1.0"]["accuracy"][0] > 0.5
    with pytest.raises(ValueError, match=r"widths \[0.5\] were not trained in .* \(it has \[1.0\]\)"):
        distill.self_distill(_config(tmp_path, tiny_teacher_dir, toy_data, output="w", widths=(1.0, 0.5)))
    assert not (tmp_path / "w").exists()
    with pytest.raises(ValueError, match="objective 'soft' is not 'distill' or 'labels'"):
        _config(tmp_path, tiny_teacher_dir, toy_data, objective="soft")
    with pytest.raises(ValueError, match="cls_hidden_size 10 does not divide into 3 heads"):
        BranchConfig(cls_hidden_size=10, cls_num_attention_heads=3)


def test_interrupted_distillation_resumes(tmp_path, toy_data, tiny_supernet_dir, monkeypatch):
    import signal

    distill.self_distill(_config(tmp_path, tiny_supernet_dir, toy_data, output="whole"))

    class CtrlC(loop.tqdm):
        def update(self, n=1):
            super().update(n)
            if self.n == 5:
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(loop, "tqdm", CtrlC)
    with pytest.raises(KeyboardInterrupt):
        distill.self_distill(_config(tmp_path, tiny_supernet_dir, toy_data, output="split"))
    monkeypatch.setattr(loop, "tqdm", CtrlC.__bases__[0])
    distill.self_distill(_config(tmp_path, tiny_supernet_dir, toy_data, output="split"))
    a, b = _weights(tmp_path / "whole" / "branches.safetensors"), _weights(tmp_path / "split" / "branches.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
