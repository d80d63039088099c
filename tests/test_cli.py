"""The command line's entry point: every command registered, errors are one clear line and exit code 2, and main
gives back what it changed in the process, so that it can run twice."""
import logging
import os
import subprocess
import sys

import pytest

from helpers import write_sentiment_data
from paddle_dynafast import cli, distributed
from paddle_dynafast.errors import ConfigError
from paddle_dynafast.runtime.threads import current_threads


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


def test_verbose_is_taken_before_or_after_the_command():
    """``serve ... -v`` was an argparse error printed after the warnings -v lets through (issue 25)."""
    parse = cli.build_parser().parse_args
    for command in (["serve", "--model", "m"], ["predict", "--model", "m"], ["finetune", "--data-dir", "d",
                                                                                 "--output", "o"]):
        assert parse(command).verbose is False
        assert parse(["-v", *command]).verbose is True
        assert parse([*command, "-v"]).verbose is True and parse([*command, "--verbose"]).verbose is True


def test_every_command_module_registers_its_sub_commands_in_order():
    subparsers = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert list(subparsers.choices) == ["finetune", "supernet", "distill", "evaluate", "calibrate", "export",
                                        "predict", "serve", "bench", "pipeline"]
    assert {subparsers.choices[name].get_default("run").__module__ for name in subparsers.choices} == {
        f"paddle_dynafast.cli.{command}" for command in ("train", "evaluate", "calibrate", "export", "predict",
                                                        "serve", "bench", "pipeline")}


def _state():
    """What main may change in the process for a command: the foreign loggers, standard output, the environment."""
    loggers = [logging.getLogger(name) for name in cli.log.FOREIGN_LOGGERS]
    return ([(f.name, list(f.handlers), f.level, f.propagate) for f in loggers], sys.stdout,
            os.environ.get("PADDLE_PG_TIMEOUT"), current_threads())


@pytest.mark.parametrize("ending", ["returns", "fails", "is interrupted"])
def test_main_gives_back_what_it_changed_and_runs_again(monkeypatch, capsys, ending):
    monkeypatch.delenv("PADDLE_PG_TIMEOUT", raising=False)
    before, seen = _state(), []

    def command(args):  # stands for any command: records what it runs under, reports, ends as asked
        seen.append((sys.stdout, os.environ.get("PADDLE_PG_TIMEOUT"), logging.getLogger("PaddleNLP").handlers,
                     logging.getLogger("uvicorn").propagate, current_threads().openmp))
        print("the report")
        if ending == "fails":
            raise ConfigError("a bad value")
        if ending == "is interrupted":
            raise KeyboardInterrupt
        return 0

    monkeypatch.setattr(cli.train, "run", command)
    args = ["finetune", "--data-dir", "d", "--output", "o", "--threads", "2", "--dist-timeout", "90"]
    code = {"returns": 0, "fails": 2, "is interrupted": 130}[ending]
    assert cli.main(args) == code and _state() == before
    monkeypatch.setattr(distributed, "is_main", lambda: False)  # a rank that does not report
    assert cli.main(args) == code and _state() == before
    assert capsys.readouterr().out == "the report\n"  # once: the second rank's went to the null device
    (rank0_out, *rank0), (rank1_out, *rank1) = seen
    assert rank0_out is before[1] and rank1_out.name == os.devnull and rank1_out.closed
    assert rank0 == rank1 and rank0[0] == "90000" and rank0[2] is False and rank0[3] == 2  # --threads 2 inside
    assert [type(h).__name__ for h in rank0[1]] == ["StderrHandler"]
