"""The bench command: --system NAME=DIR[@SPEED] parsed with errors naming the flag, the flags become the
BenchConfig, and the table printed is the one written."""
import pytest

from paddle_dynafast import cli
from paddle_dynafast.config import BenchConfig, BenchSystem, RuntimeConfig
from paddle_dynafast.errors import ConfigError


@pytest.mark.parametrize("text, system", [("full=runs/e", BenchSystem("full", "runs/e", 0.0)),
                                          ("a=runs/e@0.3", BenchSystem("a", "runs/e", 0.3)),
                                          ("a=x@y/e@1", BenchSystem("a", "x@y/e", 1.0))])
def test_a_system_is_a_name_a_directory_and_a_speed(text, system):
    assert cli.bench.parse_system(text) == system


@pytest.mark.parametrize("text, message", [
    ("runs/e", "is not NAME=DIR or NAME=DIR@SPEED"), ("=runs/e", "is not NAME=DIR or NAME=DIR@SPEED"),
    ("a=runs/e@fast", "the speed after @ must be a number in [0, 1], got 'fast'")])
def test_a_bad_system_names_the_flag(text, message):
    with pytest.raises(ConfigError) as error:
        cli.bench.parse_system(text)
    assert str(error.value).startswith(f"--system {text!r}") and message in str(error.value)


def test_flags_reach_the_bench_config():
    parse = cli.build_parser().parse_args
    args = parse(["bench", "--system", "full=f", "--system", "a=e@0.5", "--data-dir", "d", "--output", "o"])
    assert cli.bench.config_from_args(args) == BenchConfig((BenchSystem("full", "f"), BenchSystem("a", "e", 0.5)),
                                                           "d", "o")
    assert cli.bench.config_from_args(args).runtime == RuntimeConfig(threads=2)
    args = parse(["bench", "--system", "a=e", "--data-dir", "d", "--output", "o", "--split", "dev", "--max-examples",
                  "9", "--samples", "3", "--batch-size", "4", "--rounds", "2", "--runtime", "onnxruntime",
                  "--threads", "1", "--precision", "int8"])
    assert cli.bench.config_from_args(args) == BenchConfig(
        (BenchSystem("a", "e"),), "d", "o", "dev", 9, 3, 4, 2, RuntimeConfig("onnxruntime", 1, "int8"))
    with pytest.raises(ConfigError, match=r"bench needs --system NAME=DIR\[@SPEED\] \(one or more\), --data-dir and "
                                          r"--output; or --choose DIR"):
        cli.bench.config_from_args(parse(["bench", "--system", "a=e", "--data-dir", "d"]))
    with pytest.raises(ConfigError, match=r"system names \['a'\] repeat"):
        cli.bench.config_from_args(parse(["bench", "--system", "a=e", "--system", "a=f", "--data-dir", "d",
                                          "--output", "o"]))


def test_the_command_prints_the_table_it_wrote(tmp_path, tiny_exports, toy_data, capsys):
    assert cli.main(["bench", "--system", f"plain={tiny_exports[(1.0, False)]}", "--data-dir", str(toy_data),
                     "--samples", "2", "--rounds", "1", "--threads", "1", "--output", str(tmp_path / "b")]) == 0
    table = (tmp_path / "b" / "bench.md").read_text()
    assert table.count("\n") == 3 and "| plain | " in table
    assert capsys.readouterr().out == table + f"(plain is the reference) -> {tmp_path / 'b'}/bench.{{json,md}}\n"
