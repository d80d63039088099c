"""The serve command: its flags become the ServeConfig and the runtime it serves (the HTTP side is test_serve's)."""
import pytest

from paddle_dynafast import cli
from paddle_dynafast.config import RuntimeConfig, ServeConfig
from paddle_dynafast.config.runtime import usable_cpus


def test_flags_reach_the_serve_config_and_the_runtime():
    parse = cli.build_parser().parse_args
    args = parse(["serve", "--model", "m"])
    assert cli.serve.config_from_args(args) == ServeConfig() and cli.common.runtime_config(args) == RuntimeConfig()
    args = parse(["serve", "--model", "m", "--host", "0.0.0.0", "--port", "0", "--speed", "0.2", "--batch-window-ms",
                  "1.5", "--max-batch-size", "8", "--no-batching", "--max-texts", "3", "--max-request-bytes", "100"])
    assert cli.serve.config_from_args(args) == ServeConfig("0.0.0.0", 0, False, 1.5, 8, 3, 100, 0.2)
    args = parse(["serve", "--model", "m", "--max-connections", "50", "--idle-seconds", "2.5", "--body-seconds", "4",
                  "--drain-seconds", "7", "--workers", "2"])
    assert cli.serve.config_from_args(args) == ServeConfig(max_connections=50, idle_seconds=2.5, body_seconds=4.0,
                                                           drain_seconds=7.0, workers=2)


def test_workers_serve_the_directory_in_processes(monkeypatch):
    from paddle_dynafast.runtime import serve

    served = []
    monkeypatch.setattr(serve, "serve_processes", lambda *args: served.append(args))
    assert cli.main(["serve", "--model", "some-export", "--workers", "2", "--threads", "2", "--port", "0"]) == 0
    ((directory, runtime, config, level),) = served
    assert (directory, runtime.threads, config.workers, level) == ("some-export", 2, 2, 20)


def test_the_command_serves_the_runtime_it_names(tiny_exports, monkeypatch):
    from paddle_dynafast.runtime import serve

    served = []
    monkeypatch.setattr(serve, "serve", lambda source, config: served.append((source, config)))
    assert cli.main(["serve", "--model", str(tiny_exports[(0.5, True)]), "--runtime", "onnxruntime", "--precision",
                     "int8", "--threads", "1", "--port", "0", "--max-texts", "5"]) == 0
    (runtime, config), = served
    assert (runtime.kind, runtime.precision, runtime.info.directory) == ("onnxruntime", "int8",
                                                                          tiny_exports[(0.5, True)])
    assert config == ServeConfig(port=0, max_texts=5)


@pytest.mark.parametrize("flag, message", [("--max-batch-size=0", "max_batch_size must be a whole number >= 1, got 0"),
                                           ("--speed=-1", "speed -1.0 is not in [0, 1]"),
                                           ("--batch-window-ms=inf", "batch_window_ms must be in [0, 10000], got inf"),
                                           ("--idle-seconds=nan", "idle_seconds must be > 0 and <= 3600, got nan"),
                                           ("--workers=100000", f"workers 100000 is more than the {usable_cpus()} "
                                                                "CPU(s) this process may use")])
def test_a_bad_setting_is_one_line_before_the_model_is_opened(flag, message, capsys):
    assert cli.main(["serve", "--model", "no-such-export", flag]) == 2
    assert capsys.readouterr().err.strip() == f"paddle-dynafast serve: error: {message}"


def test_verbose_may_come_after_the_command_name():
    """``serve ... -v`` is taken as ``-v serve ...`` (it was an argparse error after the warnings -v lets through)."""
    parse = cli.build_parser().parse_args
    assert parse(["serve", "--model", "m", "-v"]).verbose is True
    assert parse(["serve", "--verbose", "--model", "m"]).verbose is True
    assert parse(["-v", "serve", "--model", "m"]).verbose is True
    assert parse(["serve", "--model", "m"]).verbose is False
