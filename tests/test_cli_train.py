"""The training sub-commands (one per stage): arguments reach the stage's config, the stage runs and its summary is
printed; --dist-timeout is the process group's time-out while the stage runs."""
import argparse
import os

import pytest

from helpers import write_sentiment_data
from paddle_dynafast import cli
from paddle_dynafast.config import DataConfig, TrainConfig, default
from paddle_dynafast.train import STAGES


def test_finetune_command(tmp_path, tiny_hf_dir, capsys):
    write_sentiment_data(tmp_path / "data")
    code = cli.main(["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(tmp_path / "data"),
                     "--output", str(tmp_path / "out"), "--max-seq-len", "16", "--batch-size", "16",
                     "--epochs", "2", "--lr", "2e-3", "--max-steps", "25"])
    assert code == 0
    out = capsys.readouterr().out
    assert "dev accuracy" in out and "(25 steps" in out
    import json

    stage = json.loads((tmp_path / "out" / "stage.json").read_text())
    assert stage["config"]["train"]["max_steps"] == 25 and stage["config"]["data"]["max_seq_len"] == 16


def test_supernet_command(tmp_path, tiny_hf_dir, capsys):
    write_sentiment_data(tmp_path / "data", n_train=96, n_dev=32, n_test=32)
    common = ["--data-dir", str(tmp_path / "data"), "--max-seq-len", "16", "--batch-size", "16", "--threads", "1"]
    assert cli.main(["finetune", "--model", str(tiny_hf_dir), "--output", str(tmp_path / "t"), "--epochs", "1",
                     *common]) == 0
    code = cli.main(["supernet", "--model", str(tmp_path / "t"), "--output", str(tmp_path / "s"), "--epochs", "1",
                     "--max-steps", "2", "--widths", "1.0", "0.5", "--importance-examples", "16", *common])
    out = capsys.readouterr().out
    assert code == 0 and "teacher" in out and "0.5" in out and (tmp_path / "s" / "width-0.5").is_dir()
    code = cli.main(["supernet", "--model", str(tmp_path / "t"), "--output", str(tmp_path / "s2"),
                     "--widths", "1.0", "0.3", *common])
    assert code == 2 and "width 0.3 keeps 1.2 of 4 heads" in capsys.readouterr().err
    assert not (tmp_path / "s2").exists()


def test_accuracy_levers_reach_the_stage_configs():
    from paddle_dynafast.config import AugmentConfig, DataConfig, TrainConfig
    from paddle_dynafast.train import distill, supernet

    common = ["--data-dir", "d", "--output", "o"]
    args = cli.build_parser().parse_args(["supernet", "--model", "t", "--unlabeled", "raw.txt", "--lambda-logit", "0.1",
                                          "--augment-copies", "2", "--augment-probability", "0.3", *common])
    config = supernet.SupernetStage.config_from_args(args, DataConfig("d"), TrainConfig())
    assert (config.unlabeled_file, config.lambda_logit) == ("raw.txt", 0.1)
    assert config.augment == AugmentConfig(copies=2, probability=0.3)
    args = cli.build_parser().parse_args(["distill", "--model", "s", "--objective", "mix", "--mix-alpha", "0.7",
                                          "--temperature", "2", "--augment-copies", "1", *common])
    config = distill.DistillStage.config_from_args(args, DataConfig("d"), TrainConfig())
    assert (config.objective, config.mix_alpha, config.temperature, config.augment.copies) == ("mix", 0.7, 2.0, 1)
    args = cli.build_parser().parse_args(["evaluate", "--model", "m", "--patience", "1", "3", *common])
    assert args.patience == [1, 3]
    args = cli.build_parser().parse_args(["calibrate", "--model", "m", "--confidence", "none", *common])
    assert args.confidence is None
    assert cli.build_parser().parse_args(["calibrate", "--model", "m", *common]).confidence == 0.9


def test_every_stage_has_its_sub_command_with_its_own_schedule():
    parser = cli.build_parser()
    for stage in STAGES:
        args = parser.parse_args([stage.name, "--model", "m", "--data-dir", "d", "--output", "o"])
        assert args.stage is stage and cli.train.train_config(args) == default(stage.config_class, "train")
        assert cli.train.data_config(args) == DataConfig("d")
    args = parser.parse_args(["distill", "--model", "m", "--data-dir", "d", "--output", "o", "--epochs", "7",
                              "--lr", "0.5", "--batch-size", "8", "--eval-batch-size", "4", "--weight-decay", "0.1",
                              "--warmup-ratio", "0.2", "--seed", "3", "--max-steps", "9", "--max-seq-len", "32",
                              "--max-examples", "5", "--labels", "neg", "pos"])
    assert cli.train.train_config(args) == TrainConfig(epochs=7, batch_size=8, eval_batch_size=4, lr=0.5,
                                                       weight_decay=0.1, warmup_ratio=0.2, seed=3, max_steps=9)
    assert cli.train.data_config(args) == DataConfig("d", max_seq_len=32, max_examples=5, split_seed=3,
                                                     labels=("neg", "pos"))


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("0.5", 0.5), ("0", None), ("-3", None), ("nan", None)])
def test_the_timeout_is_a_finite_positive_number_of_seconds(text, seconds):
    if seconds is None:
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be a finite number of seconds > 0, got '{text}'"):
            cli.train.positive_seconds(text)
    else:
        assert cli.train.positive_seconds(text) == seconds


def test_the_timeout_holds_while_the_stage_runs(monkeypatch):
    monkeypatch.setenv("PADDLE_PG_TIMEOUT", "1800000")
    seen = []
    monkeypatch.setattr(cli.train, "run", lambda args: seen.append(os.environ["PADDLE_PG_TIMEOUT"]) or 0)
    assert cli.main(["finetune", "--data-dir", "d", "--output", "o", "--threads", "1", "--dist-timeout", "2.5"]) == 0
    assert cli.main(["finetune", "--data-dir", "d", "--output", "o", "--threads", "1"]) == 0
    assert seen == ["2500", "1800000"] and os.environ["PADDLE_PG_TIMEOUT"] == "1800000"
