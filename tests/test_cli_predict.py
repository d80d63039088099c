"""The predict command: its flags become the PredictConfig; the JSON lines out, and one summary line of its own
(truncation counted once, not logged by the library call)."""
import json
import re

import pytest

from paddle_dynafast import cli
from paddle_dynafast.config import PredictConfig, RuntimeConfig
from paddle_dynafast.runtime.predictor import Predictor


def test_flags_reach_the_predict_config():
    parse = cli.build_parser().parse_args
    assert cli.predict.config_from_args(parse(["predict", "--model", "m"])) == PredictConfig("m")
    args = parse(["predict", "--model", "m", "--input", "in.tsv", "--labeled", "--jsonl", "--output", "out.jsonl",
                  "--speed", "0.3", "--batch-size", "4", "--runtime", "onnxruntime", "--precision", "int8",
                  "--threads", "1"])
    assert cli.predict.config_from_args(args) == PredictConfig(
        "m", "in.tsv", True, True, "out.jsonl", 0.3, 4, RuntimeConfig("onnxruntime", 1, "int8"))
    with pytest.raises(ValueError, match=r"speed 1.5 is not in \[0, 1\]"):
        cli.predict.config_from_args(parse(["predict", "--model", "m", "--speed", "1.5"]))


def test_the_command_writes_json_lines_and_logs_one_summary(tmp_path, tiny_exports, capsys):
    (tmp_path / "in.txt").write_text("1 " + "w1 " * 40 + "good\n0 bad w2\n")
    directory = tiny_exports[(1.0, True)]
    assert cli.main(["predict", "--model", str(directory), "--input", str(tmp_path / "in.txt"), "--labeled",
                     "--speed", "0.3", "--threads", "1", "--runtime", "paddle-inference"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    expected = Predictor(directory, "paddle-inference", threads=1).predict(["w1 " * 40 + "good", "bad w2"], speed=0.3)
    assert [line["label"] for line in lines] == expected.labels and expected.truncated == 1
    assert [line["exit_layer"] for line in lines] == expected.exit_layer.tolist()
    accuracy = 100 * sum(p == g for p, g in zip(expected.labels, ["1", "0"])) / 2
    summary = (f"2 texts, mean exit layer {expected.exit_layer.mean():.2f}, 1 truncated, accuracy {accuracy:.2f}")
    assert re.findall(r"INFO paddle_dynafast: (.*)", captured.err) == [summary]
    assert "truncated 1 of" not in captured.err
