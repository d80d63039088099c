"""The console: one log style, one line per progress bar, PaddleNLP and uvicorn in our format while a command runs
and as they were after it."""
import io
import logging
import re
import subprocess
import sys

import pytest

from helpers import write_sentiment_data
from paddle_dynafast import cli
from paddle_dynafast.cli.log import FOREIGN_LOGGERS, StderrHandler, command_logging, package_handler


def test_progress_is_logged_despite_paddle_resetting_the_root_logger(tmp_path, tiny_hf_dir):
    write_sentiment_data(tmp_path / "data", n_train=64, n_dev=16, n_test=16)
    result = subprocess.run([sys.executable, "-m", "paddle_dynafast", "finetune", "--model", str(tiny_hf_dir),
                             "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
                             "--epochs", "1", "--batch-size", "16", "--max-seq-len", "16"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "INFO paddle_dynafast.train.loop: finetune epoch 0 step 4: score" in result.stderr


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


@pytest.mark.parametrize("level, foreign_level", [(logging.INFO, logging.WARNING), (logging.DEBUG, logging.INFO)])
def test_the_foreign_loggers_are_lent_the_handler_and_given_back(monkeypatch, level, foreign_level):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    own = logging.StreamHandler(io.StringIO())
    nlp, ours = logging.getLogger("PaddleNLP"), logging.getLogger("paddle_dynafast")
    saved = (nlp.handlers, nlp.level, nlp.propagate, ours.level, ours.propagate)
    nlp.handlers, nlp.propagate = [own], True
    nlp.setLevel(logging.DEBUG)
    try:
        with pytest.raises(RuntimeError, match="the command failed"):
            with command_logging(level):
                assert nlp.handlers == [package_handler()] and not nlp.propagate
                assert [logging.getLogger(name).level for name in FOREIGN_LOGGERS] == [foreign_level] * 2
                nlp.info("shown with -v only")
                nlp.warning("always shown")
                logging.getLogger("paddle_dynafast.cli").debug("ours at debug")
                raise RuntimeError("the command failed")
        assert (nlp.handlers, nlp.level, nlp.propagate) == ([own], logging.DEBUG, True)
    finally:  # as the test found them
        nlp.handlers, nlp.propagate, ours.propagate = saved[0], saved[2], saved[4]
        nlp.setLevel(saved[1])
        ours.setLevel(saved[3])
    shown = sys.stderr.getvalue()
    assert re.search(r"^\d\d:\d\d:\d\d WARNING PaddleNLP: always shown$", shown, re.M)
    assert ("shown with -v only" in shown) == ("ours at debug" in shown) == (level == logging.DEBUG)
    assert own.stream.getvalue() == ""


def test_the_package_logger_gets_one_handler_however_many_commands_run():
    for _ in range(3):
        with command_logging(logging.INFO):
            pass
    handlers = logging.getLogger("paddle_dynafast").handlers
    assert [type(h) for h in handlers].count(StderrHandler) == 1 and handlers[0] is package_handler()
