"""Stage 1 (finetune) through the shared stage skeleton: learning, artifacts, resume, refusal to mix runs."""
import json
import signal

import numpy as np
import paddle
import pytest
from safetensors.numpy import load_file

from helpers import write_sentiment_data
from paddle_dynafast import data
from paddle_dynafast.config import DataConfig, FinetuneConfig, ModelSize, TrainConfig
from paddle_dynafast.model.loading import load_classifier
from paddle_dynafast.model.over_loader import accuracy, predict_logits
from paddle_dynafast.train import loop
from paddle_dynafast.train.finetune import finetune


def _config(tmp_path, model_dir, output="out", **train_kwargs):
    kwargs = dict(epochs=3, batch_size=16, lr=2e-3, warmup_ratio=0.1, seed=3, log_every=5)
    kwargs.update(train_kwargs)
    return FinetuneConfig(output_dir=str(tmp_path / output), model_dir=str(model_dir),
                          data=DataConfig(data_dir=str(tmp_path / "data"), max_seq_len=16), train=TrainConfig(**kwargs))


def _weights(directory):
    return load_file(str(directory / "model.safetensors"))


def test_finetune_learns_and_writes_a_complete_stage(tmp_path, tiny_hf_dir):
    write_sentiment_data(tmp_path / "data")
    result = finetune(_config(tmp_path, tiny_hf_dir))
    out = tmp_path / "out"
    assert result.metrics["dev_accuracy"] >= 0.95 and result.metrics["test_accuracy"] >= 0.95
    assert result.metrics["train_steps"] == 45 and len(result.metrics["history"]) == 3
    stage = json.loads((out / "stage.json").read_text())
    assert stage["complete"] is True and stage["labels"] == ["0", "1"] and stage["config"]["train"]["lr"] == 2e-3
    assert stage["versions"]["paddlepaddle"] == paddle.__version__
    assert not (out / "checkpoint").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
         "stage.json", "metrics.json"])
    # the stage directory is the best model: reloading it reproduces the reported test accuracy
    reloaded = load_classifier(out)
    splits = data.load_splits(tmp_path / "data")
    features = data.encode(splits["test"], reloaded.tokenizer, 16, stage["labels"])
    loader = data.make_loader(features, 0, 32, shuffle=False)
    logits = predict_logits(reloaded.model, loader)
    assert accuracy(logits, [f.label for f in features]) == result.metrics["test_accuracy"]
    # a second call finds the stage complete and does nothing, also after the directory was moved
    again = finetune(_config(tmp_path, tiny_hf_dir))
    assert again.metrics == result.metrics
    out.rename(tmp_path / "moved")
    moved = finetune(_config(tmp_path, tiny_hf_dir, output="moved"))
    assert moved.metrics == result.metrics


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, tiny_hf_dir, monkeypatch):
    write_sentiment_data(tmp_path / "data")
    whole = finetune(_config(tmp_path, tiny_hf_dir, output="whole", epochs=2))

    class CtrlCAtStep7(loop.tqdm):
        def update(self, n=1):
            super().update(n)
            if self.n == 7:
                signal.raise_signal(signal.SIGINT)  # as a user's Ctrl-C: finish the step, save, stop

    monkeypatch.setattr(loop, "tqdm", CtrlCAtStep7)
    with pytest.raises(KeyboardInterrupt, match="stopped at step 7"):
        finetune(_config(tmp_path, tiny_hf_dir, output="split", epochs=2))
    state = json.loads((tmp_path / "split" / "checkpoint" / "loop_state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (7, 0, 7)
    assert json.loads((tmp_path / "split" / "stage.json").read_text())["complete"] is False
    monkeypatch.setattr(loop, "tqdm", CtrlCAtStep7.__bases__[0])
    resumed = finetune(_config(tmp_path, tiny_hf_dir, output="split", epochs=2))
    assert [h["dev_accuracy"] for h in resumed.metrics["history"]] == [h["dev_accuracy"] for h in whole.metrics["history"]]
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_refuses_another_configuration(tmp_path, tiny_hf_dir):
    write_sentiment_data(tmp_path / "data")
    finetune(_config(tmp_path, tiny_hf_dir, max_steps=2))  # a finished stage
    with pytest.raises(ValueError, match=r"another configuration \(train.lr, train.seed differ\); pass --restart"):
        finetune(_config(tmp_path, tiny_hf_dir, max_steps=2, lr=1e-3, seed=4))
    restarted = finetune(_config(tmp_path, tiny_hf_dir, max_steps=2, lr=1e-3, seed=4), restart=True)
    assert restarted.metrics["train_steps"] == 2


def test_random_init_with_character_vocabulary(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rows = [(1, "这本书很好看"), (0, "这本书不好看"), (1, "非常好的书"), (0, "很差的书")] * 20
    for split in ("train", "dev"):
        (data_dir / f"{split}.tsv").write_text("label\ttext_a\n" + "".join(f"{l}\t{t}\n" for l, t in rows))
    config = FinetuneConfig(output_dir=str(tmp_path / "zh"), model_dir=None, random_init=True,
                            data=DataConfig(data_dir=str(data_dir), max_seq_len=16),
                            train=TrainConfig(epochs=10, batch_size=8, lr=2e-3, seed=0),
                            size=ModelSize(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=37))
    result = finetune(config)
    assert result.metrics["dev_accuracy"] == 1.0
    vocab = (tmp_path / "zh" / "vocab.txt").read_text().split("\n")
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and "书" in vocab
    loaded = load_classifier(tmp_path / "zh")
    assert loaded.model.config.vocab_size == len([v for v in vocab if v]) and loaded.model.config.hidden_size == 32


def test_random_init_keeps_the_pretrained_architecture(tmp_path, tiny_hf_dir):
    pretrained = load_classifier(tiny_hf_dir, num_labels=2).model.state_dict()
    random_model = load_classifier(tiny_hf_dir, num_labels=2, random_init=True).model.state_dict()
    assert {k: tuple(v.shape) for k, v in pretrained.items()} == {k: tuple(v.shape) for k, v in random_model.items()}
    word = "bert.embeddings.word_embeddings.weight"
    assert not np.allclose(pretrained[word].numpy(), random_model[word].numpy())
    assert abs(float(random_model[word].numpy().std()) - 0.02) < 0.005  # PaddleNLP's initializer_range
