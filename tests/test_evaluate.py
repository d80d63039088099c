"""Evaluation grid and calibration: the NumPy exits agree with the real loop; budgets pick the right points."""
import json

import numpy as np
import paddle
import pytest

from paddle_dynafast import calibrate, cli, distill, evaluate
from paddle_dynafast.config import CalibrateConfig, DataConfig, EvaluateConfig
from paddle_dynafast.evaluate import GridPoint
from paddle_dynafast.exit import sample_flops
from paddle_dynafast.flops import BertShape, model_flops


def test_grid_equals_the_batched_exit_loop(tmp_path, toy_data, tiny_dynafast_dir):
    config = EvaluateConfig(model_dir=str(tiny_dynafast_dir), output_dir=str(tmp_path / "eval"),
                            data=DataConfig(data_dir=str(toy_data), max_seq_len=16), split="test",
                            speeds=(0.0, 0.1, 0.3, 0.5, 0.8, 1.0))
    points = evaluate.run_evaluation(config)
    assert len(points) == 4 * 6
    model = distill.DynaFastModel.load(tiny_dynafast_dir)
    loader, gold, tokens = evaluate.load_split(model, config.data, "test", 64)
    shape = BertShape.from_config(model.backbone.config)
    for point in points:
        adaptive = model.at(point.width)
        labels, exits, order = [], [], []
        with paddle.no_grad():
            for batch in loader:
                probs, exit_layer, _ = adaptive(batch["input_ids"], batch["token_type_ids"], speed=point.speed)
                labels.append(probs.numpy().argmax(-1))
                exits.append(exit_layer.numpy())
                order.append(batch["index"].numpy())
        order = np.concatenate(order)
        labels = np.concatenate(labels)[np.argsort(order)]
        exit_layer = np.concatenate(exits)[np.argsort(order)]
        assert point.accuracy == pytest.approx(float((labels == np.asarray(gold)).mean()))
        assert point.mean_exit_layer == pytest.approx(float(exit_layer.mean()))
        flops = sample_flops(shape, model.branches.config, np.asarray(tokens), exit_layer, point.width).mean()
        assert point.mean_flops == pytest.approx(flops)
    full = np.mean([model_flops(shape, t) for t in tokens])
    p0 = next(p for p in points if p.width == 1.0 and p.speed == 0.0)
    assert p0.flops_speedup == pytest.approx(full / p0.mean_flops) and p0.flops_speedup < 1  # branches cost a little
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert len(report["points"]) == 24 and report["examples"] == 48
    assert (tmp_path / "eval" / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "eval" / "evaluation.md").read_text()
    assert "| 0.5 | 0.3 |" in table and "| 1 | 1 |" not in table  # the table shows the paper's speeds only


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


def test_model_without_branches_and_bad_speed_are_clear_errors(tmp_path, toy_data, tiny_supernet_dir, capsys):
    code = cli.main(["evaluate", "--model", str(tiny_supernet_dir), "--data-dir", str(toy_data),
                     "--output", str(tmp_path / "e"), "--threads", "1"])
    assert code == 2 and "has no branches.json: it is not a model with branches" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"speed 1.2 is not in \[0, 1\]"):
        EvaluateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), speeds=(0.0, 1.2))
    with pytest.raises(ValueError, match="speeds must include 0"):
        CalibrateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), speeds=(0.1, 0.2))
