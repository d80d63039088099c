"""Calibration on measured time: every point measured on the runtime asked for, choices only among measured points,
the chosen ones measured on test."""
import json

import pytest

from paddle_dynafast import cli
from paddle_dynafast.analysis import timed
from paddle_dynafast.analysis.results import TimedResult
from paddle_dynafast.config import Budget, DataConfig, TimedCalibrateConfig


def _point(width, speed, accuracy, throughput_speedup, latency_ms=1.0, reference=0.901):
    return timed.TimedPoint(width=width, speed=speed, runtime="onnxruntime int8", accuracy=accuracy,
                            mean_exit_layer=1.0, mean_flops=1.0, throughput=100 * throughput_speedup,
                            latency_ms=latency_ms, throughput_speedup=throughput_speedup,
                            promised_drop=reference - accuracy)


def test_choices_are_only_measured_points():
    points = [_point(1.0, 0.0, 0.900, 2.0, 3.0), _point(1.0, 0.2, 0.897, 3.5, 1.5), _point(0.5, 0.1, 0.890, 5.0, 1.0),
              _point(0.5, 0.5, 0.880, 8.0, 0.5)]
    config = TimedCalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=0.5, min_throughput_speedup=4.0)
    fastest, most_accurate = timed.choose_points(points, config.budget)
    assert (fastest.width, fastest.speed) == (1.0, 0.2)  # 0.890 is 1.1 points below
    assert most_accurate.speed == 0.1  # the most accurate of those >= 4x
    latency = TimedCalibrateConfig("m", "o", DataConfig("d"), max_latency_ms=0.6)
    assert timed.choose_points(points, latency.budget)[1].speed == 0.5
    none = TimedCalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=0.0, min_throughput_speedup=100.0)
    assert timed.choose_points(points, none.budget) == (None, None)
    assert timed.choose_points(points, Budget(max_accuracy_drop=0.5))[1] is None  # no wall-clock budget


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"runtime 'dygraph' is not one of \['paddle-inference', 'onnxruntime'\]"):
        TimedCalibrateConfig("m", "o", DataConfig("d"), runtime="dygraph")
    with pytest.raises(ValueError, match="max_latency_ms must be > 0, got -1"):
        TimedCalibrateConfig("m", "o", DataConfig("d"), max_latency_ms=-1)


def test_calibrate_on_measured_time(tmp_path, toy_data, tiny_dynafast_dir, tiny_teacher_dir, capsys, monkeypatch):
    monkeypatch.setenv("PADDLE_DYNAFAST_CACHE", str(tmp_path / "cache"))
    code = cli.main(["calibrate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data), "--output",
                     str(tmp_path / "timed"), "--runtime", "onnxruntime", "--precision", "int8", "--threads", "1",
                     "--max-accuracy-drop", "2", "--min-throughput-speedup", "0.5"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "timed" / "timed.json").read_text())
    assert result["complete"] and result["runtime"] == "onnxruntime int8"
    assert len(result["points"]) == 4 * 11  # every width at every speed of the grid
    assert result["reference"]["runtime"].endswith("fp32") and result["reference"]["throughput"] > 0
    fastest = result["fastest_within_accuracy_budget"]
    assert fastest["accuracy"] >= result["reference"]["accuracy"] - 0.02 - 1e-9
    assert any(p["choice"] == "fastest_within_accuracy_budget" for p in result["test"]["points"])
    assert TimedResult.from_json(result).to_json() == result
    # the reference is the teacher, exported without exits; every point's drop is against it, with its interval
    assert result["teacher_dir"] == str(tiny_teacher_dir)
    reference = json.loads((tmp_path / "timed" / "exports" / "full" / "export.json").read_text())
    assert reference["source"] == str(tiny_teacher_dir) and reference["exit_loop"] is False
    for p in result["points"] + [q for q in result["test"]["points"]]:
        assert p["delta_low"] <= p["delta"] <= p["delta_high"]
    assert fastest["delta"] == pytest.approx(fastest["accuracy"] - result["reference"]["accuracy"])
    # what ran is named by its hashes: the int8 program of every width
    manifest = json.loads((tmp_path / "timed" / "exports" / f"width-{fastest['width']:g}" / "manifest.json").read_text())
    assert result["program_files"][str(float(fastest["width"]))] == {"model.int8.onnx":
                                                                      manifest["files"]["model.int8.onnx"]}
    assert "fastest within the accuracy budget" in capsys.readouterr().out
    assert cli.main(["calibrate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data), "--output",
                     str(tmp_path / "x"), "--min-throughput-speedup", "2"]) == 2
    assert "need --runtime" in capsys.readouterr().err
