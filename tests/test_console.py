"""The paddle-dynafast entry point: without -v it ignores the libraries' UserWarnings and sets glog to errors only
(unless GLOG_minloglevel is set already); with -v (or --verbose) it changes neither; then it runs the command line
with the arguments it was given and returns its exit code. It imports nothing heavy before that."""
import os
import subprocess
import sys
import warnings

import pytest

from paddle_dynafast import cli, console


@pytest.fixture()
def command_line(monkeypatch):
    """The command line, replaced by a recorder of each call's arguments that exits with 7; no glog level set."""
    calls = []
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append(argv) or 7)
    monkeypatch.delenv("GLOG_minloglevel", raising=False)
    return calls


def ignored(module: str) -> bool:
    """Whether a UserWarning raised in ``module`` is ignored by the filters in place."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("chatter", UserWarning, "somewhere.py", 1, module=module)
    return not caught


@pytest.mark.parametrize("argv", [["train", "--data-dir", "d"], ["export", "--model", "m"]])
def test_without_verbose_the_chatter_is_quieted(command_line, argv):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert console.main(argv) == 7
        assert [ignored(m) for m in ("paddle", "paddle.utils.cpp_extension", "paddlenlp.transformers",
                                     "paddleslim.nas", "_distutils_hack")] == [True] * 5
        assert [ignored(m) for m in ("paddle_dynafast.cli", "paddlex", "numpy", "__main__")] == [False] * 4
    assert command_line == [argv] and os.environ["GLOG_minloglevel"] == "2"


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_with_verbose_nothing_is_changed(command_line, flag):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        assert console.main([flag, "serve", "--model", "m"]) == 7
        assert warnings.filters == filters and not ignored("paddle")
    assert "GLOG_minloglevel" not in os.environ and command_line == [[flag, "serve", "--model", "m"]]


def test_a_glog_level_set_already_is_kept(command_line, monkeypatch):
    monkeypatch.setenv("GLOG_minloglevel", "0")
    with warnings.catch_warnings():
        console.main(["predict"])
    assert os.environ["GLOG_minloglevel"] == "0"


def test_the_arguments_default_to_sys_argv(command_line, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["paddle-dynafast", "-v", "bench"])
    with warnings.catch_warnings():
        console.main()
    assert command_line == [None]  # the command line reads sys.argv itself
    assert "GLOG_minloglevel" not in os.environ  # -v was read from sys.argv


def test_it_imports_nothing_heavy_before_it_has_set_them():
    """Both settings must be in place before ``import paddle``: importing console alone loads no Paddle."""
    done = subprocess.run([sys.executable, "-c", "import sys; from paddle_dynafast import console; "
                                                 "print(sorted({'paddle', 'paddlenlp', 'paddleslim'} & set(sys.modules)))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
