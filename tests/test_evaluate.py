"""Evaluation grid and calibration: the NumPy exits agree with the real loop; budgets pick the right points."""
import json

import numpy as np
import paddle
import pytest

from paddle_dynafast import cli
from paddle_dynafast import stats
from paddle_dynafast.analysis import criteria, evaluate
from paddle_dynafast.config import BootstrapConfig, DataConfig, EvaluateConfig
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.model.flops import sample_flops
from paddle_dynafast.model.flops import BertShape, model_flops


def test_grid_equals_the_batched_exit_loop(tmp_path, toy_data, tiny_dynafast_dir):
    config = EvaluateConfig(model_dir=str(tiny_dynafast_dir), output_dir=str(tmp_path / "eval"),
                            data=DataConfig(data_dir=str(toy_data), max_seq_len=16), split="test",
                            speeds=(0.0, 0.1, 0.3, 0.5, 0.8, 1.0))
    points = evaluate.run_evaluation(config).points
    assert len(points) == 4 * 6
    model = DynaFastModel.load(tiny_dynafast_dir)
    loader, gold, tokens, _ = evaluate.load_split(model, config.data, "test", 64)
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
    table, patience = (tmp_path / "eval" / "evaluation.md").read_text().split("## PABEE patience against entropy")
    assert "| 0.5 | 0.3 |" in table and "| 1 | 1 |" not in table  # the table shows the paper's speeds only
    assert "Δ vs full model [95 % CI]" in table and "| 1 | 1 | " in patience


def test_intervals_patience_and_saved_probabilities(tmp_path, toy_data, tiny_dynafast_dir):
    config = EvaluateConfig(model_dir=str(tiny_dynafast_dir), output_dir=str(tmp_path / "eval"),
                            data=DataConfig(data_dir=str(toy_data), max_seq_len=16), split="dev",
                            speeds=(0.0, 0.2, 0.5, 1.0), patience=(1,), bootstrap=BootstrapConfig(samples=2000))
    result = evaluate.run_evaluation(config)
    points = result.points
    saved = evaluate.SplitProbabilities.load(tmp_path / "eval" / evaluate.PROBS_FILE)
    assert sorted(saved.probs) == [0.25, 0.5, 0.75, 1.0] and saved.probs[1.0].shape == (48, 2, 2)
    reference = saved.full_model_correct()
    full = next(p for p in points if p.width == 1.0 and p.speed == 0.0)
    assert full.accuracy == pytest.approx(reference.mean())
    assert (full.delta, full.delta_low, full.delta_high, full.mcnemar_p) == (0.0, 0.0, 0.0, 1.0)
    for point in points:
        p, _, _ = evaluate.simulate_exits(saved.probs[point.width], point.speed)
        correct = p.argmax(-1) == saved.gold  # any point re-simulates from the saved probabilities
        assert point.accuracy == pytest.approx(correct.mean())
        expected = stats.paired_bootstrap(correct, reference, samples=2000, seed=0)
        assert point.delta == pytest.approx(expected.difference)
        assert (point.delta_low, point.delta_high) == pytest.approx((expected.low, expected.high), abs=1e-12)
        assert point.mcnemar_p == pytest.approx(stats.mcnemar(correct, reference).p_value)
        assert point.delta_low <= point.delta <= point.delta_high
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert result.to_json() == report and evaluate.EvaluationResult.from_json(report) == result  # what it returns
    assert result.config == config and result.examples == 48
    assert sorted(result.patience_vs_entropy) == [0.25, 0.5, 0.75, 1.0]
    assert len(report["patience_points"]) == 4 and set(report["patience_vs_entropy"]) == {"1.0", "0.75", "0.5", "0.25"}
    for row in report["patience_points"]:
        _, exit_layer = criteria.simulate_patience(saved.probs[row["width"]], 1)
        assert row["mean_exit_layer"] == pytest.approx(exit_layer.mean())
        if row["entropy_speed"] is not None:  # the entropy point it is compared with spends no more FLOPs
            match = next(p for p in points if p.width == row["width"] and p.speed == row["entropy_speed"])
            assert match.flops_speedup >= row["flops_speedup"] - 1e-9
            assert row["vs_entropy"] == pytest.approx(row["accuracy"] - match.accuracy)


def test_model_without_branches_and_bad_speed_are_clear_errors(tmp_path, toy_data, tiny_supernet_dir, capsys):
    code = cli.main(["evaluate", "--model", str(tiny_supernet_dir), "--data-dir", str(toy_data),
                     "--output", str(tmp_path / "e"), "--threads", "1"])
    assert code == 2 and "has no branches.json: it is not a model with branches" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"speed 1.2 is not in \[0, 1\]"):
        EvaluateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), speeds=(0.0, 1.2))
    with pytest.raises(ValueError, match="patience 0 is not a whole number >= 1"):
        EvaluateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), patience=(0, 1))
    with pytest.raises(ValueError, match=r"bootstrap samples must be a whole number in \[100, 100000\], got 10"):
        BootstrapConfig(samples=10)
