"""The serve command: its flags become the ServeConfig and the runtime it serves (the HTTP side is test_serve's)."""
import pytest

from paddle_dynafast import cli
from paddle_dynafast.config import RuntimeConfig, ServeConfig


def test_flags_reach_the_serve_config_and_the_runtime():
    parse = cli.build_parser().parse_args
    args = parse(["serve", "--model", "m"])
    assert cli.serve.config_from_args(args) == ServeConfig() and cli.common.runtime_config(args) == RuntimeConfig()
    args = parse(["serve", "--model", "m", "--host", "0.0.0.0", "--port", "0", "--speed", "0.2", "--batch-window-ms",
                  "1.5", "--max-batch-size", "8", "--no-batching", "--max-texts", "3", "--max-request-bytes", "100"])
    assert cli.serve.config_from_args(args) == ServeConfig("0.0.0.0", 0, False, 1.5, 8, 3, 100, 0.2)


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
                                           ("--speed=-1", "speed -1.0 is not in [0, 1]")])
def test_a_bad_setting_is_one_line_before_the_model_is_opened(flag, message, capsys):
    assert cli.main(["serve", "--model", "no-such-export", flag]) == 2
    assert capsys.readouterr().err.strip() == f"paddle-dynafast serve: error: {message}"
