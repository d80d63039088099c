"""Calibration: budgets pick the right points on dev, and the command reports them on test."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from paddle_dynafast import cli
from paddle_dynafast import stats
from paddle_dynafast.analysis import calibrate
from paddle_dynafast.analysis.evaluate import GridPoint, SplitProbabilities
from paddle_dynafast.analysis.results import CalibrationResult
from paddle_dynafast.config import BootstrapConfig, Budget, CalibrateConfig, DataConfig


def _point(width, speed, accuracy, speedup):
    return GridPoint(width=width, speed=speed, accuracy=accuracy, mean_flops=100 / speedup, flops_speedup=speedup,
                     mean_exit_layer=1.0)


def test_calibration_picks_budgeted_points():
    points = [_point(1.0, 0.0, 0.900, 0.98), _point(1.0, 0.3, 0.898, 2.0), _point(1.0, 0.5, 0.880, 3.5),
              _point(0.5, 0.0, 0.897, 1.9), _point(0.5, 0.2, 0.896, 3.1), _point(0.5, 0.6, 0.870, 6.0),
              _point(0.25, 0.0, 0.860, 3.6), _point(0.25, 0.4, 0.850, 7.0)]
    result = calibrate.calibrate(points, Budget(max_accuracy_drop=0.5, confidence=None, min_flops_speedup=3.0))
    assert result.full_model.accuracy == 0.9
    assert result.per_width[1.0].speed == 0.3 and result.per_width[0.5].speed == 0.2
    assert result.per_width[0.25] is None
    assert result.to_json()["per_width"]["1.0"]["speed"] == 0.3  # the file keys widths as strings
    best = result.fewest_flops_within_accuracy_budget
    assert (best.width, best.speed) == (0.5, 0.2)
    reverse = result.best_accuracy_within_flops_budget
    assert (reverse.width, reverse.speed) == (0.5, 0.2)
    assert result.operating_points() == [(0.5, 0.2), (1.0, 0.3)]
    with pytest.raises(ValueError, match="no point at width 1.0 and speed 0"):
        calibrate.calibrate(points[1:], Budget(0.5, None, 3.0))
    with pytest.raises(ValueError, match="min_flops_speedup must be >= 1, got 0.5"):
        calibrate.calibrate(points, Budget(0.5, None, 0.5))
    # no FLOPs budget: no reverse choice
    assert calibrate.calibrate(points, Budget(0.5, None, None)).best_accuracy_within_flops_budget is None


def _correct_with(reference, lose, gain, start):
    """A copy of ``reference`` that is wrong on ``lose`` of its right answers and right on ``gain`` of its wrong
    ones (taken from ``start`` on)."""
    c = reference.copy()
    right, wrong = np.flatnonzero(reference), np.flatnonzero(~reference)
    c[right[start:start + lose]] = False
    c[wrong[start:start + gain]] = True
    return c


def test_confidence_rejects_a_point_that_fits_the_budget_by_luck():
    reference = np.arange(1000) % 10 != 0  # 90 % right
    noisy = _correct_with(reference, lose=22, gain=18, start=0)  # drop 0.4 points, 40 discordant examples
    steady = _correct_with(reference, lose=1, gain=0, start=100)  # drop 0.1 points, 1 discordant example
    points = [_point(1.0, 0.0, reference.mean(), 1.0), _point(0.5, 0.5, noisy.mean(), 4.0),
              _point(1.0, 0.3, steady.mean(), 2.0)]
    correct = np.stack([reference, noisy, steady], axis=1)
    raw = calibrate.calibrate(points, Budget(0.5, None, 3.0))
    assert (raw.fewest_flops_within_accuracy_budget.width, raw.budget.confidence) == (0.5, None)
    sure = calibrate.calibrate(points, Budget(0.5, 0.9, 3.0), correct, bootstrap=BootstrapConfig(samples=4000))
    best = sure.fewest_flops_within_accuracy_budget
    assert (best.width, best.speed) == (1.0, 0.3) and sure.per_width[0.5] is None
    # the promised drop is the 0.9-quantile of the bootstrap drop, on the same resamples for every point
    diffs = stats.bootstrap_differences(correct, reference, samples=4000, seed=0)
    assert best.promised_drop == pytest.approx(-np.quantile(diffs[:, 2], 0.1))
    assert 0.001 <= best.promised_drop <= 0.003  # one lost example in 1000, sometimes resampled twice or thrice
    promised = calibrate.promised_drops(correct, reference, 0.9, BootstrapConfig(samples=4000))
    assert promised[0] == 0 and 0.005 < promised[1] < 0.015  # 0.4 points + about 1.28 standard errors
    assert sure.best_accuracy_within_flops_budget.width == 0.5  # the reverse budget keeps the raw rule
    with pytest.raises(ValueError, match=r"confidence 0.9 needs the correctness of every point"):
        calibrate.calibrate(points, Budget(0.5, 0.9, 3.0))
    with pytest.raises(ValueError, match=r"confidence 1.0 is not in \[0.5, 1\)"):
        CalibrateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), confidence=1.0)


def test_sequence_drops_are_bonferroni_bounds_raised_to_the_slower_points_of_each_width():
    from paddle_dynafast.analysis.results import GridPoint

    points = [GridPoint(w, s, 0.9, 1.0, 1.0, 1.0) for w in (1.0, 0.75, 0.5) for s in (0.1, 0.0, 0.3)]
    rng = np.random.default_rng(1)
    reference = rng.random(500) < 0.9
    correct = np.stack([reference ^ (rng.random(500) < rate) for rate in (0.04, 0.0, 0.01, 0.02, 0.03, 0.0,
                                                                          0.01, 0.06, 0.02)], axis=1)
    bootstrap = BootstrapConfig(samples=1000)
    bound = calibrate.promised_drops(correct, reference, 1 - 0.1 / 3, bootstrap)  # three widths
    drops = calibrate.sequence_drops(points, correct, reference, 0.9, bootstrap)
    for chain in ([1, 0, 2], [4, 3, 5], [7, 6, 8]):  # each width's points by ascending speed
        np.testing.assert_allclose(drops[chain], np.maximum.accumulate(bound[chain]))
    assert (drops >= bound).all() and drops[1] == bound[1]  # the slowest point of a width: its own bound
    assert drops[6] == bound[7] > bound[6]  # width 0.5 at speed 0.1 promises no better than at speed 0


def test_simultaneous_bounds_hold_for_every_point_at_once():
    """The max-t band: for one point it is that point's own quantile; for many, wider than each point's own, and
    over fresh data every point stays within its bound together about as often as the confidence says."""
    rng = np.random.default_rng(5)
    n, points = 800, 12
    reference = rng.random(n) < 0.88
    flips = rng.random((n, points)) < 0.05
    correct = np.where(flips, ~reference[:, None], reference[:, None])  # each point: 5 % of answers changed
    bootstrap = BootstrapConfig(samples=2000)
    one = calibrate.promised_drops(correct[:, :1], reference, 0.9, bootstrap, simultaneous=True)
    assert one == pytest.approx(calibrate.promised_drops(correct[:, :1], reference, 0.9, bootstrap), abs=1e-6)
    each = calibrate.promised_drops(correct, reference, 0.9, bootstrap)
    together = calibrate.promised_drops(correct, reference, 0.9, bootstrap, simultaneous=True)
    assert (together >= each - 1e-9).all() and (together > each + 1e-4).any()
    # coverage: 40 fresh data sets where every point's true drop is 0 (as many answers turned right as wrong)
    covered_each = covered_together = 0
    for trial in range(40):
        r = np.random.default_rng(100 + trial)
        ref = r.random(n) < 0.88
        turn = np.where(ref, 0.02, 0.02 * 0.88 / 0.12)[:, None]  # right -> wrong 2 %, wrong -> right 14.7 %
        c = np.where(r.random((n, points)) < turn, ~ref[:, None], ref[:, None])
        covered_each += (calibrate.promised_drops(c, ref, 0.9, BootstrapConfig(samples=500)) >= 0).all()
        covered_together += (calibrate.promised_drops(c, ref, 0.9, BootstrapConfig(samples=500),
                                                      simultaneous=True) >= 0).all()
    # about 0.9 of 40 = 36 together; each point alone at 0.9 leaves the twelve together covered far less often
    assert covered_together >= 30 and covered_each <= 25, (covered_together, covered_each)


def test_calibrate_command(tmp_path, toy_data, tiny_dynafast_dir, tiny_teacher_dir, capsys):
    code = cli.main(["calibrate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data),
                     "--output", str(tmp_path / "cal"), "--max-accuracy-drop", "1", "--threads", "1",
                     "--confidence", "0.8", "--bootstrap-samples", "500", "--resplits", "2"])
    assert code == 0
    result = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert result["config"]["data"]["max_seq_len"] == 16  # read from the model's stage.json
    assert result["config"]["confidence"] == 0.8 and result["confidence"] == 0.8
    chosen = result["fewest_flops_within_accuracy_budget"]
    assert chosen["promised_drop"] <= 0.01 + 1e-9 and chosen["delta"] >= -chosen["promised_drop"] - 1e-9
    assert {(p["width"], p["speed"]) for p in result["test"]} == set(
        CalibrationResult.from_json(result).operating_points())
    assert all(p["delta_low"] <= p["delta"] <= p["delta_high"] for p in result["test"])
    out = capsys.readouterr().out
    assert "fewest FLOPs within the accuracy budget" in out and "promised dev drop" in out
    assert result["resplits"]["repeats"] == 2 and "re-split at random 2 times" in out
    # the saved probabilities re-calibrate without the model, to the same choice
    dev = SplitProbabilities.load(tmp_path / "cal" / calibrate.PROBS_FILES["dev"])
    test = SplitProbabilities.load(tmp_path / "cal" / calibrate.PROBS_FILES["test"])
    from paddle_dynafast.model.dynafast import DynaFastModel
    from paddle_dynafast.model.flops import BertShape

    model = DynaFastModel.load(tiny_dynafast_dir)
    config = CalibrateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), max_accuracy_drop=1,
                             confidence=0.8, bootstrap=BootstrapConfig(samples=500), resplits=2)
    again = calibrate.calibrate_probabilities(dev, test, BertShape.from_config(model.backbone.config),
                                              model.branches.config, config)
    assert again.to_json()["fewest_flops_within_accuracy_budget"] == chosen
    assert again.to_json()["test"] == result["test"]
    # all of it but what only the command adds (its configuration, the re-splits and where the teacher is)
    assert again == replace(CalibrationResult.from_json(result), resplits=None, config=None, teacher_dir=None)
    # the drops are against the teacher the model descends from, found through the stage directories
    assert result["teacher"]["directory"] == str(tiny_teacher_dir) and "Reference: the teacher" in out
    assert result["teacher"]["dev_accuracy"] == pytest.approx(dev.reference_correct().mean())
    assert chosen["delta"] == pytest.approx(chosen["accuracy"] - result["teacher"]["dev_accuracy"])
    assert cli.main(["calibrate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data), "--output",
                     str(tmp_path / "raw"), "--confidence", "none", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "raw" / "calibration.json").read_text())["confidence"] is None


def test_the_budget_is_measured_against_the_reference_given():
    """A point 1 example below the full model but 2 above the teacher: within a 0-point budget against the teacher,
    not against the full model."""
    points = [GridPoint(1.0, 0.0, 0.6, 10.0, 1.0, 2.0), GridPoint(1.0, 0.5, 0.5, 5.0, 2.0, 1.0)]
    correct = np.array([[1, 1], [1, 1], [1, 1], [1, 0], [1, 1], [1, 1], [0, 0], [0, 0], [0, 0], [0, 0]], bool)
    teacher = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    budget = Budget(max_accuracy_drop=0.0, confidence=None)
    assert calibrate.calibrate(points, budget, correct).fewest_flops_within_accuracy_budget.speed == 0.0
    cheap = calibrate.calibrate(points, budget, correct, reference_correct=teacher).fewest_flops_within_accuracy_budget
    assert cheap.speed == 0.5
    confident = calibrate.calibrate(points, Budget(max_accuracy_drop=0.0, confidence=0.9), correct,
                                    BootstrapConfig(samples=500), teacher)
    assert confident.fewest_flops_within_accuracy_budget.promised_drop <= 0


def test_run_calibration_returns_what_it_writes_and_why_test_is_missing(tmp_path, toy_data, tiny_dynafast_dir):
    folder = tmp_path / "no-test"
    shutil.copytree(toy_data, folder)
    (folder / "test.txt").unlink()
    config = CalibrateConfig(model_dir=str(tiny_dynafast_dir), output_dir=str(tmp_path / "cal"),
                             data=DataConfig(str(folder), max_seq_len=16), bootstrap=BootstrapConfig(samples=300))
    result = calibrate.run_calibration(config)
    written = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert result.to_json() == written and CalibrationResult.from_json(written) == result
    assert result.config == config and result.budget == config.budget and result.resplits is None
    assert result.test is None and result.test_not_measured == f"{folder} has no test split"
    assert written["test"] == f"not measured: {folder} has no test split" and "test_fingerprint" not in written
    table = (tmp_path / "cal" / "calibration.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| fewest FLOPs within the accuracy budget |"))
    assert row.endswith("x |  | | | |  |")  # its test cells are empty


def test_calibrate_config_needs_the_full_model():
    with pytest.raises(ValueError, match="speeds must include 0"):
        CalibrateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), speeds=(0.1, 0.2))


def _split(n, rng, noise):
    """Probabilities at four widths over 3 layers: later layers surer, narrower widths noisier."""
    gold = rng.integers(0, 2, n)
    probs = {}
    for w in (1.0, 0.75, 0.5, 0.25):
        sign = (2 * gold - 1)[:, None, None]
        logit = sign * np.array([0.3, 1.0, 2.0])[None, :, None] + noise * (1.5 - w) * rng.standard_normal((n, 3, 1))
        p1 = 1 / (1 + np.exp(-logit))
        probs[w] = np.concatenate([1 - p1, p1], -1).astype("float32")
    return SplitProbabilities(probs, gold, rng.integers(5, 30, n))


def test_resplits_recalibrate_on_pooled_examples():
    from paddle_dynafast.config import BranchConfig
    from paddle_dynafast.model.flops import BertShape

    rng = np.random.default_rng(0)
    dev, test = _split(120, rng, 2.0), _split(200, rng, 2.0)
    shape, branch = BertShape(32, 3, 4, 8, 37, 2), BranchConfig(cls_hidden_size=16)
    config = CalibrateConfig(model_dir="m", output_dir="o", data=DataConfig("d"), max_accuracy_drop=1.0,
                             speeds=(0.0, 0.2, 0.5, 0.8), bootstrap=BootstrapConfig(samples=300))
    result = calibrate.resplit_promises(dev, test, shape, branch, config, repeats=4, seed=5)
    assert result == calibrate.resplit_promises(dev, test, shape, branch, config, repeats=4, seed=5)  # seeded
    assert result.repeats == 4 and 0 <= result.held <= 1 and result.confidence == 0.9
    # one re-split by hand: the same permutation, calibrated directly
    one = calibrate.resplit_promises(dev, test, shape, branch, config, repeats=1, seed=5)
    order = np.random.default_rng(5).permutation(320)
    pooled = {w: np.concatenate([dev.probs[w], test.probs[w]]) for w in dev.probs}
    gold, tokens = np.concatenate([dev.gold, test.gold]), np.concatenate([dev.tokens, test.tokens])
    parts = [SplitProbabilities({w: p[i] for w, p in pooled.items()}, gold[i], tokens[i])
             for i in (order[:120], order[120:])]
    direct = calibrate.calibrate_probabilities(*parts, shape, branch, config)
    chosen = direct.fewest_flops_within_accuracy_budget
    measured = next(p for p in direct.test if (p.width, p.speed) == (chosen.width, chosen.speed))
    assert one.test_drop_mean == pytest.approx(-100 * measured.delta)
    assert one.held == float(-100 * measured.delta <= 1.0 + 1e-9)
    # a model whose every width and exit answers like the full model keeps any promise
    same = SplitProbabilities({w: np.repeat(dev.probs[1.0][:, -1:], 3, axis=1) for w in dev.probs}, dev.gold, dev.tokens)
    steady = calibrate.resplit_promises(same, same, shape, branch, config, repeats=3)
    assert steady.held == 1.0 and steady.test_drop_mean == 0.0
