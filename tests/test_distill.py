"""Stage 3: self-distilled branches at every width, with the backbone frozen bit for bit."""
import json

import numpy as np
import paddle
import pytest
from safetensors.numpy import load_file

from paddle_dynafast import data
from paddle_dynafast.config import AugmentConfig, BranchConfig, DataConfig, SelfDistillConfig, TrainConfig
from paddle_dynafast.model.branches import Branches
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.model.over_loader import layer_probabilities
from paddle_dynafast.stats import per_layer_report
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
    # FastBERT's self-distillation (the KL alone): the branches learn to agree with the final classifier
    result = distill.self_distill(_config(tmp_path, tiny_supernet_dir, toy_data, shared_branches=shared,
                                          objective="distill"))
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
    untrained = per_layer_report(layer_probabilities(fresh.at(0.5), loader), None)["kl_to_final"][0]
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
    # the default, half KL and half labels: the first branch learns the labels as well, with its KL to the final
    # classifier between the label-trained branch's and the self-distilled one's
    config = _config(tmp_path, tiny_teacher_dir, toy_data, output="mix", train=TrainConfig(epochs=1, batch_size=16,
                                                                                            lr=3e-3, seed=3))
    assert config.objective == "mix" and config.mix_alpha == 0.5
    mixed = distill.self_distill(config).metrics["layers"]["dev"]["1.0"]
    kl = distill.self_distill(_config(tmp_path, tiny_teacher_dir, toy_data, output="kl", objective="distill",
                                      train=config.train)).metrics["layers"]["dev"]["1.0"]
    assert mixed["accuracy"][0] > 0.5
    assert kl["kl_to_final"][0] <= mixed["kl_to_final"][0] <= result.metrics["layers"]["dev"]["1.0"]["kl_to_final"][0]
    with pytest.raises(ValueError, match=r"widths \[0.5\] were not trained in .* \(it has \[1.0\]\)"):
        distill.self_distill(_config(tmp_path, tiny_teacher_dir, toy_data, output="w", widths=(1.0, 0.5)))
    assert not (tmp_path / "w").exists()
    with pytest.raises(ValueError, match="objective 'soft' is not 'distill', 'labels' or 'mix'"):
        _config(tmp_path, tiny_teacher_dir, toy_data, objective="soft")
    with pytest.raises(ValueError, match="objective 'labels' cannot use augmented copies"):
        _config(tmp_path, tiny_teacher_dir, toy_data, objective="labels", augment=AugmentConfig(copies=1))
    with pytest.raises(ValueError, match="mix_alpha 1.5 is not in"):
        _config(tmp_path, tiny_teacher_dir, toy_data, objective="mix", mix_alpha=1.5)
    with pytest.raises(ValueError, match="temperature 2.0 has no effect with objective 'labels'"):
        _config(tmp_path, tiny_teacher_dir, toy_data, objective="labels", temperature=2.0)
    with pytest.raises(ValueError, match="cls_hidden_size 10 does not divide into 3 heads"):
        BranchConfig(cls_hidden_size=10, cls_num_attention_heads=3)


def test_mix_objective_is_the_weighted_sum_of_kl_and_labelled_cross_entropy(tiny_supernet_dir, toy_data):
    from paddle_dynafast.model.loading import load_classifier
    from paddle_dynafast.train.losses import kl_divergence, labelled_cross_entropy

    loaded = load_classifier(tiny_supernet_dir)
    paddle.seed(0)
    branches = Branches(2, 32, 2, BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), widths=(1.0, 0.5))
    branches.eval()  # no dropout: the objective and the parts below see the same branch outputs
    adaptive = {w: DynaFastModel(loaded.model, loaded.tokenizer, branches, ["0", "1"]).at(w) for w in (1.0, 0.5)}
    features = data.encode(data.load_splits(toy_data)["dev"][:8], loaded.tokenizer, 16, ["0", "1"])
    batch = data.Collator(0)(list(enumerate(features)))
    ids, types = paddle.to_tensor(batch["input_ids"]), paddle.to_tensor(batch["token_type_ids"])
    labels = paddle.to_tensor(np.where(np.arange(8) % 3 == 0, -1, batch["labels"]))  # some rows unlabelled
    mixed = float(distill.BranchObjective(adaptive, branches, "mix", alpha=0.3, temperature=2.0)(ids, types, labels,
                                                                                                  0.5))
    states, mask = adaptive[0.5].hidden_states(ids, types)
    final = adaptive[0.5].classify(1, states[-1], mask)
    logits = branches.at(0.5)[0](states[0], mask)  # two layers: one branch
    kl, ce = float(kl_divergence(logits, final, 2.0)), float(labelled_cross_entropy(logits, labels))
    assert mixed == pytest.approx(0.3 * kl + 0.7 * ce, rel=1e-5) and kl > 0 and ce > 0


def test_mix_with_augmented_copies_trains(tmp_path, toy_data, tiny_supernet_dir):
    result = distill.self_distill(_config(tmp_path, tiny_supernet_dir, toy_data, objective="mix", mix_alpha=0.5,
                                          temperature=2.0, augment=AugmentConfig(copies=1, neighbours=3),
                                          train=TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=3, max_steps=3)))
    stage = json.loads((tmp_path / "distill" / "stage.json").read_text())
    assert stage["num_examples"]["train"] == 400 and stage["config"]["objective"] == "mix"
    assert result.metrics["train_steps"] == 3


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
