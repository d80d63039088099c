"""The PaddleSlim OFA supernet: width 1.0 is the teacher, narrower widths equal exported sub-models."""
import copy
import json

import numpy as np
import paddle
import pytest
from safetensors.numpy import load_file

from helpers import WIDTHS, random_ids, supernet_at
from paddle_dynafast.config import DataConfig, SupernetConfig, TrainConfig
from paddle_dynafast.model.forward import head_mask_forward
from paddle_dynafast.model.loading import load_classifier
from paddle_dynafast.train import loop, supernet

@pytest.fixture()
def ids():
    return paddle.to_tensor(random_ids(np.random.default_rng(0), 4, 10, pad_from=[10, 7, 3, 9]))


def _ofa(model, widths=WIDTHS):
    return supernet.make_ofa(supernet.convert_to_supernet(model, widths))


def supernetsupernet_at(ofa, width, ids):
    """The supernet's logits at ``width`` (also the reference of tests/test_narrow.py)."""
    ofa.model.eval()
    ofa.set_net_config(supernet.width_config(ofa, width))
    with head_mask_forward(ofa.model):
        return supernet.supernet_logits(ofa, {"input_ids": ids, "token_type_ids": paddle.zeros_like(ids)}).numpy()


def test_width_one_equals_the_teacher(tiny_model, ids):
    expected = tiny_model(ids).numpy()
    ofa = _ofa(tiny_model)
    np.testing.assert_allclose(supernet_at(ofa, 1.0, ids), expected, atol=1e-5)
    assert "forward" not in tiny_model.__dict__  # the teacher instance was copied, not converted or patched
    np.testing.assert_array_equal(tiny_model(ids).numpy(), expected)


def test_half_width_runs_half_the_heads_and_neurons(tiny_model, ids):
    ofa = _ofa(tiny_model)
    seen = {}

    def record(name):
        def hook(layer, inputs, output):
            seen[name] = output.shape[-1]
        return hook

    layer = ofa.model.bert.encoder.layers[1]
    handles = [layer.self_attn.q_proj.register_forward_post_hook(record("q")),
               layer.self_attn.v_proj.register_forward_post_hook(record("v")),
               layer.linear1.register_forward_post_hook(record("ffn")),
               layer.linear2.register_forward_post_hook(record("out"))]
    supernet_at(ofa, 0.5, ids)
    for handle in handles:
        handle.remove()
    assert seen == {"q": 16, "v": 16, "ffn": 18, "out": 32}  # 2 of 4 heads of 8; int(0.5 * 37) neurons; hidden kept


def test_width_config_checks_dynabert_config(tiny_model, monkeypatch):
    from paddleslim.nas.ofa import utils

    ofa = _ofa(tiny_model)
    config = supernet.width_config(ofa, 0.5)
    assert config == utils.dynabert_config(ofa, 0.5)
    narrowed = sorted(name for name, c in config.items() if c.get("expand_ratio") == 0.5)
    assert narrowed == sorted(f"bert.encoder.layers.{i}.{n}" for i in range(2) for n in supernet.WIDTH_LAYERS)
    wrong = copy.deepcopy(config)
    wrong["bert.encoder.layers.1.linear2"]["expand_ratio"] = 0.5
    monkeypatch.setattr(utils, "dynabert_config", lambda model, width: wrong)
    with pytest.raises(RuntimeError, match="dynabert_config set bert.encoder.layers.1.linear2 to width 0.5, expected 1.0"):
        supernet.width_config(ofa, 0.5)


@pytest.fixture()
def tiny_teacher(tmp_path, toy_data, tiny_teacher_dir):
    """A private copy of the session's tiny teacher, and the toy data at tmp_path / 'data'."""
    import shutil

    shutil.copytree(toy_data, tmp_path / "data")
    return shutil.copytree(tiny_teacher_dir, tmp_path / "teacher")


def _supernet_config(tmp_path, teacher, **kwargs):
    kwargs.setdefault("train", TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=2))
    return SupernetConfig(output_dir=str(tmp_path / "supernet"), teacher_dir=str(teacher),
                          data=DataConfig(data_dir=str(tmp_path / "data"), max_seq_len=16), importance_examples=32,
                          **kwargs)


def test_supernet_stage(tmp_path, tiny_teacher):
    result = supernet.train_supernet(_supernet_config(tmp_path, tiny_teacher))
    out = tmp_path / "supernet"
    report = result.metrics["widths"]
    assert set(report) == {"teacher", "1.0", "0.75", "0.5", "0.25"}
    for width in ("0.75", "0.5", "0.25"):
        assert report[width]["submodel_dev_accuracy"] == report[width]["dev_accuracy"]
        assert (out / f"width-{width}" / "model.safetensors").is_file()
    assert report["0.5"]["heads_per_layer"] == 2 and report["0.25"]["neurons_per_layer"] == 9
    assert report["1.0"]["dev_mean_flops"] > report["0.5"]["dev_mean_flops"] > report["0.25"]["dev_mean_flops"]
    assert report["1.0"]["parameters"] == report["teacher"]["parameters"]
    for width in ("1.0", "0.25"):
        paired = report[width]["test_vs_teacher"]
        assert paired["delta"] == pytest.approx(report[width]["test_accuracy"] - report["teacher"]["test_accuracy"])
        assert paired["low"] <= paired["delta"] <= paired["high"] and 0 < paired["mcnemar_p"] <= 1
    assert result.metrics["train_steps"] == 11  # (200 - 32 held out) / 16
    stage = json.loads((out / "stage.json").read_text())
    assert stage["complete"] and stage["num_examples"]["importance"] == 32 and stage["config"]["widths"] == list(WIDTHS)
    assert len(json.loads((out / "importance.json").read_text())["head_order"]) == 2
    assert load_classifier(out).source_format == "paddlenlp"  # the full-width supernet is a PaddleNLP directory
    again = supernet.train_supernet(_supernet_config(tmp_path, tiny_teacher))
    assert again.metrics == result.metrics


def test_teacher_of_another_vocabulary_or_labels_writes_nothing(tmp_path, tiny_teacher):
    vocab = tiny_teacher / "vocab.txt"
    vocab.write_text(vocab.read_text() + "extra\n")
    with pytest.raises(Exception, match="vocab.txt has 100 tokens, config.json vocab_size 99"):
        supernet.train_supernet(_supernet_config(tmp_path, tiny_teacher))
    assert not (tmp_path / "supernet").exists()
    vocab.write_text("\n".join(vocab.read_text().split("\n")[:99]) + "\n")
    (tmp_path / "data" / "train.txt").write_text((tmp_path / "data" / "train.txt").read_text() + "7 good w1\n")
    with pytest.raises(Exception, match=r"training labels \['7'\] are not among the teacher's labels \['0', '1'\]"):
        supernet.train_supernet(_supernet_config(tmp_path, tiny_teacher))
    assert not (tmp_path / "supernet").exists()


def test_interrupted_supernet_resumes_to_the_same_weights(tmp_path, tiny_teacher, monkeypatch):
    import signal

    def config(output):
        return SupernetConfig(output_dir=str(tmp_path / output), teacher_dir=str(tiny_teacher),
                              data=DataConfig(data_dir=str(tmp_path / "data"), max_seq_len=16),
                              train=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=2), importance_examples=32)

    supernet.train_supernet(config("whole"))

    class CtrlCAtStep4(loop.tqdm):
        def update(self, n=1):
            super().update(n)
            if self.n == 4:
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(loop, "tqdm", CtrlCAtStep4)
    with pytest.raises(KeyboardInterrupt):
        supernet.train_supernet(config("split"))
    monkeypatch.setattr(loop, "tqdm", CtrlCAtStep4.__bases__[0])
    supernet.train_supernet(config("split"))
    for name in ("model.safetensors", "width-0.5/model.safetensors"):
        a = load_file(str(tmp_path / "whole" / name))
        b = load_file(str(tmp_path / "split" / name))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_unlabeled_text_and_augmented_copies_join_the_supernet_training(tmp_path, tiny_teacher):
    from helpers import texts_of
    from paddle_dynafast.config import AugmentConfig

    (tmp_path / "raw.txt").write_text("\n".join(texts_of(tmp_path / "data", 40, "train")) + "\n")
    result = supernet.train_supernet(_supernet_config(
        tmp_path, tiny_teacher, unlabeled_file=str(tmp_path / "raw.txt"),
        augment=AugmentConfig(copies=2, probability=0.5, neighbours=3),
        train=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=2, max_steps=2)))
    stage = json.loads((tmp_path / "supernet" / "stage.json").read_text())
    assert stage["num_examples"]["train"] == (200 - 32 + 40) * 3  # originals and raw text, each with two copies
    assert stage["config"]["augment"] == {"copies": 2, "probability": 0.5, "neighbours": 3}
    assert result.metrics["train_steps"] == 2


def test_the_epoch_never_matters_to_the_width_task(tiny_model, ids):
    """Why the supernet does not call ``ofa.set_epoch`` as PaddleSlim's tutorial does: with ``set_task("width")`` and
    a ``net_config`` set before every forward (both as in the tutorial), OFA 2.6.0 never reads the epoch."""
    teacher = copy.deepcopy(tiny_model)
    ofa = supernet.make_ofa(supernet.convert_to_supernet(tiny_model, WIDTHS), teacher=teacher)
    objective = supernet.WidthObjective(ofa, lambda_logit=1.0)

    def never(*args, **kwargs):
        raise AssertionError("OFA consulted the epoch")

    ofa._compute_epochs = never
    ofa._progressive_shrinking = never
    with head_mask_forward(ofa.model):
        losses = []
        for epoch in (0, 2):
            ofa.set_epoch(epoch)
            ofa.model.eval()
            losses.append(float(objective(ids, paddle.zeros_like(ids), 0.5)))
    assert losses[0] == losses[1]
    assert ofa.current_config == supernet.width_config(ofa, 0.5)
