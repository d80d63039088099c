"""Calibration: budgets pick the right points on dev, and the command reports them on test."""
import json

import pytest

from paddle_dynafast import cli
from paddle_dynafast.analysis import calibrate
from paddle_dynafast.analysis.evaluate import GridPoint
from paddle_dynafast.config import CalibrateConfig, DataConfig


def _point(width, speed, accuracy, speedup):
    return GridPoint(width=width, speed=speed, accuracy=accuracy, mean_flops=100 / speedup, flops_speedup=speedup,
                     mean_exit_layer=1.0)


def test_calibration_picks_budgeted_points():
    points = [_point(1.0, 0.0, 0.900, 0.98), _point(1.0, 0.3, 0.898, 2.0), _point(1.0, 0.5, 0.880, 3.5),
              _point(0.5, 0.0, 0.897, 1.9), _point(0.5, 0.2, 0.896, 3.1), _point(0.5, 0.6, 0.870, 6.0),
              _point(0.25, 0.0, 0.860, 3.6), _point(0.25, 0.4, 0.850, 7.0)]
    result = calibrate.calibrate(points, max_accuracy_drop=0.5, min_flops_speedup=3.0)
    assert result["full_model"]["accuracy"] == 0.9
    assert result["per_width"]["1.0"]["speed"] == 0.3 and result["per_width"]["0.5"]["speed"] == 0.2
    assert result["per_width"]["0.25"] is None
    best = result["fewest_flops_within_accuracy_budget"]
    assert (best["width"], best["speed"]) == (0.5, 0.2)
    reverse = result["best_accuracy_within_flops_budget"]
    assert (reverse["width"], reverse["speed"]) == (0.5, 0.2)
    assert calibrate.operating_points(result) == [{"width": 0.5, "speed": 0.2}, {"width": 1.0, "speed": 0.3}]
    with pytest.raises(ValueError, match="no point at width 1.0 and speed 0"):
        calibrate.calibrate(points[1:], 0.5, 3.0)
    with pytest.raises(ValueError, match="min_flops_speedup must be >= 1, got 0.5"):
        calibrate.calibrate(points, 0.5, 0.5)


def test_calibrate_command(tmp_path, toy_data, tiny_dynafast_dir, capsys):
    code = cli.main(["calibrate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data),
                     "--output", str(tmp_path / "cal"), "--max-accuracy-drop", "1", "--threads", "1"])
    assert code == 0
    result = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert result["config"]["data"]["max_seq_len"] == 16  # read from the model's stage.json
    chosen = result["fewest_flops_within_accuracy_budget"]
    assert chosen["accuracy"] >= result["full_model"]["accuracy"] - 0.01 - 1e-9
    assert {(p["width"], p["speed"]) for p in result["test"]} == {
        (p["width"], p["speed"]) for p in calibrate.operating_points(result)}
    assert "fewest FLOPs within the accuracy budget" in capsys.readouterr().out


def test_calibrate_config_needs_the_full_model():
    with pytest.raises(ValueError, match="speeds must include 0"):
        CalibrateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), speeds=(0.1, 0.2))
