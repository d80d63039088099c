"""The command line: arguments reach the config, errors are one clear line and exit code 2, the console is one log
style with one line per progress bar."""
import re
import subprocess
import sys

from helpers import write_sentiment_data
from paddle_dynafast import cli


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


def test_bad_data_is_one_line_and_exit_2(tmp_path, tiny_hf_dir, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("0 good\n1 \n")
    code = cli.main(["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(tmp_path / "data"),
                     "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "paddle-dynafast finetune: error:" in err and "train.txt:2: empty text after label '1'" in err


def test_bad_option_value_is_named(tmp_path, tiny_hf_dir, capsys):
    code = cli.main(["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(tmp_path), "--output",
                     str(tmp_path / "o"), "--lr", "-1"])
    assert code == 2 and "lr must be > 0, got -1.0" in capsys.readouterr().err


def test_module_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "paddle_dynafast", "finetune", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--max-examples" in result.stdout and "example: paddle-dynafast" in result.stdout


def test_progress_is_logged_despite_paddle_resetting_the_root_logger(tmp_path, tiny_hf_dir):
    write_sentiment_data(tmp_path / "data", n_train=64, n_dev=16, n_test=16)
    result = subprocess.run([sys.executable, "-m", "paddle_dynafast", "finetune", "--model", str(tiny_hf_dir),
                             "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
                             "--epochs", "1", "--batch-size", "16", "--max-seq-len", "16"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "INFO paddle_dynafast.train.loop: finetune epoch 0 step 4: score" in result.stderr


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


def test_log_follows_stderr_after_the_command_returns(tmp_path, monkeypatch):
    """The handler ``main`` installs writes to the ``sys.stderr`` of the moment: a stream replaced (and closed)
    since, as a notebook or a test capture does, is not written to."""
    import io
    import logging

    cli.main(["finetune", "--model", str(tmp_path), "--data-dir", str(tmp_path), "--output", str(tmp_path / "o"),
              "--lr", "-1"])  # any command installs the handler; this one stops at its argument check
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    monkeypatch.setattr(logging, "raiseExceptions", True)
    logging.getLogger("paddle_dynafast.model.loading").info("written after the command")
    assert "written after the command" in later.getvalue()


def test_a_user_error_is_one_line_an_internal_error_shows_its_traceback(tmp_path, tiny_hf_dir, capsys, monkeypatch):
    write_sentiment_data(tmp_path / "data", n_train=32, n_dev=16, n_test=16)
    args = ["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(tmp_path / "data"), "--output",
            str(tmp_path / "o"), "--max-seq-len", "16", "--max-steps", "1", "--threads", "1"]
    assert cli.main(args + ["--lr", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["paddle-dynafast finetune: error: lr must be > 0, got -1.0"]
    assert cli.main(["-v"] + args + ["--lr", "-1"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err  # -v: the traceback of a user error too

    from paddle_dynafast.train import finetune

    def broken(self):
        raise ValueError("an internal bug")

    monkeypatch.setattr(finetune.FinetuneStage, "prepare", broken)
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ValueError: an internal bug" in err
    assert "internal error" in err


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


def test_console_is_one_log_style_with_one_line_per_progress_bar(tmp_path, tiny_hf_dir):
    """What a terminal shows of stderr (per line, what follows its last carriage return, trailing blanks aside):
    our log lines and the finished bar, once, with the loss it ended at; no PaddleNLP coloured lines, no library warnings."""
    write_sentiment_data(tmp_path / "data", n_train=64, n_dev=16, n_test=16)
    result = subprocess.run([sys.executable, "-m", "paddle_dynafast", "finetune", "--model", str(tiny_hf_dir),
                             "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
                             "--epochs", "2", "--batch-size", "16", "--max-seq-len", "16", "--threads", "1"],
                            capture_output=True, timeout=120)  # bytes: text mode would turn \r into \n
    err = result.stderr.decode("utf-8")
    assert result.returncode == 0, err
    # tqdm pads a line that got shorter than the one it overwrites with spaces: a terminal shows them as nothing
    shown = [line.rsplit("\r", 1)[-1].rstrip() for line in err.split("\n") if line.rsplit("\r", 1)[-1].strip()]
    bars = [line for line in shown if line.startswith("finetune:")]
    assert len(bars) == 1 and "8/8" in bars[0], shown
    assert all(re.match(r"\d\d:\d\d:\d\d (INFO|WARNING) paddle_dynafast", line) for line in shown if line not in bars), shown
    losses = re.findall(r"loss=(\d\.\d+)", err)
    assert len(set(losses)) > 1 and bars[0].endswith(f"loss={losses[-1]}, lr=0.00e+00]")  # the loss of every step
    assert "Warning" not in err and "[    INFO]" not in err and "Configuration saved" not in err


def test_verbose_shows_paddlenlp_in_our_format(tmp_path, tiny_hf_dir, capsys):
    write_sentiment_data(tmp_path / "data", n_train=32, n_dev=16, n_test=16)
    args = ["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(tmp_path / "data"), "--max-seq-len", "16",
            "--max-steps", "1", "--threads", "1"]
    assert cli.main(["-v", *args, "--output", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"\d\d:\d\d:\d\d INFO PaddleNLP: Configuration saved in ", err) and "[    INFO]" not in err
    assert cli.main([*args, "--output", str(tmp_path / "b")]) == 0
    assert "PaddleNLP" not in capsys.readouterr().err
