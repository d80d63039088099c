"""The paddle-dynafast entry point: without -v it ignores the libraries' UserWarnings and sets glog to errors only
(unless GLOG_minloglevel is set already); with -v (or --verbose) it changes neither; then it runs the command line
with the arguments it was given and returns its exit code. It imports nothing heavy before that."""
import os
import subprocess
import sys
import tempfile
import warnings

import pytest

from paddle_dynafast import cli, console
from paddle_dynafast.mkl import MKL_CPU_TYPE
from test_mkl import AMD


@pytest.fixture()
def command_line(monkeypatch):
    """The command line, replaced by a recorder of each call's arguments that exits with 7; no glog level set."""
    calls = []
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append(argv) or 7)
    monkeypatch.delenv("GLOG_minloglevel", raising=False)
    monkeypatch.setenv(MKL_CPU_TYPE, "0")  # set: the console leaves it (its own tests are below)
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


@pytest.fixture()
def no_home(tmp_path, monkeypatch):
    """A home directory that cannot be made (a file stands in its way), the libraries' variables unset, and the
    temporary directory a fresh one."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path / "file" / "home"))
    for variable in ("PPNLP_HOME", "MPLCONFIGDIR", "PADDLE_DYNAFAST_CACHE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, "unset below")  # recorded, so that what the console sets is undone after it
        monkeypatch.delenv(variable)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "tmp" / f"paddle-dynafast-{os.getuid()}"


def test_a_home_that_cannot_be_written_is_moved_to_a_private_folder(no_home, command_line, monkeypatch):
    with warnings.catch_warnings():
        assert console.main(["predict"]) == 7
    assert (os.environ["PPNLP_HOME"], os.environ["MPLCONFIGDIR"], os.environ["PADDLE_DYNAFAST_CACHE"]) == (
        str(no_home / "paddlenlp"), str(no_home / "matplotlib"), str(no_home / "paddle_dynafast"))
    assert oct(no_home.stat().st_mode & 0o777) == "0o700" and command_line == [["predict"]]
    monkeypatch.setenv("MPLCONFIGDIR", "/somewhere/mine")  # a variable the user set is kept
    monkeypatch.delenv("PPNLP_HOME")
    assert console.writable_homes() is None and os.environ["MPLCONFIGDIR"] == "/somewhere/mine"


def test_what_cannot_be_moved_is_one_line_saying_what_to_set(no_home, command_line, capsys, monkeypatch):
    no_home.symlink_to(no_home.parent)  # the private folder is a link: someone else may own where it points
    with warnings.catch_warnings():
        assert console.main(["predict"]) == 2
    assert capsys.readouterr().err == (f"paddle-dynafast: error: {os.environ['HOME']}/.paddlenlp cannot be written, "
                                       f"nor {no_home} ({no_home} is not a directory of this user's): set PPNLP_HOME "
                                       "to a directory you can write\n")
    monkeypatch.setenv("PPNLP_HOME", str(no_home.parent.parent / "file" / "nlp"))
    with warnings.catch_warnings():
        assert console.main(["predict"]) == 2
    assert "PPNLP_HOME=" in capsys.readouterr().err and command_line == []


def test_every_command_runs_with_a_read_only_home(tmp_path, tiny_exports):
    """The issue's case, for real: the home directory a read-only mount (a user and mount namespace of our own)."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"no read-only mount without privileges here (unshare -rm: {probe.stderr.decode().strip()})")
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    (tmp_path / "in.txt").write_text("good w1\n")
    command = (f"mount --bind -o ro {home} {home} && cd {tmp_path} && HOME={home} TMPDIR={scratch} "
               f"{sys.executable} -m paddle_dynafast predict --model {tiny_exports[(1.0, True)]} --input in.txt "
               "--threads 1 --runtime paddle-inference")
    environment = {k: v for k, v in os.environ.items() if k not in ("PPNLP_HOME", "MPLCONFIGDIR",
                                                                    "PADDLE_DYNAFAST_CACHE")}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=300,
                          env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"label"' in done.stdout and list(home.iterdir()) == []
    assert (scratch / f"paddle-dynafast-{os.getuid()}" / "paddlenlp" / "models").is_dir()


def test_the_console_sets_it_before_paddle_loads_and_says_so_once(tmp_path):
    """In a fresh process on a fake AMD CPU: the variable is set when ``import paddle`` starts (MKL reads it when it
    loads), one line says so, and a second command in the same process says nothing."""
    (tmp_path / "cpuinfo").write_text(AMD)
    code = f"""
import os, sys
from pathlib import Path
from paddle_dynafast import console
from paddle_dynafast.mkl import MKL_CPU_TYPE

class Watch:  # records the variable when paddle is first imported, then lets the import go on
    seen = []
    def find_spec(self, name, path=None, target=None):
        if name == "paddle":
            self.seen.append(os.environ.get(MKL_CPU_TYPE))
        return None

sys.meta_path.insert(0, Watch())
console.mkl_avx2_on_amd.__defaults__ = (Path({str(tmp_path / "cpuinfo")!r}),)
codes = [console.main(["bench", "--data-dir", "x"]) for _ in range(2)]  # bench without --system: exit code 2
print(codes, Watch.seen)
"""
    env = {k: v for k, v in os.environ.items() if k != MKL_CPU_TYPE}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[2, 2] ['5']"
    lines = [line for line in done.stderr.splitlines() if MKL_CPU_TYPE in line]
    assert len(lines) == 1 and "INFO paddle_dynafast.console: MKL_DEBUG_CPU_TYPE=5: MKL takes its AVX2 path" in lines[0]
