"""Calibration on measured time: every point measured on the runtime asked for, choices only among measured points,
the chosen ones measured on test."""
import importlib.util
import json
from pathlib import Path

import pytest

import numpy as np

from paddle_dynafast import cli, data
from paddle_dynafast.analysis import timed
from paddle_dynafast.analysis.results import TimedResult
from paddle_dynafast.config import Budget, DataConfig, TimedCalibrateConfig
from paddle_dynafast.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


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


def _result(points, max_accuracy_drop=0.0):
    config = TimedCalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=max_accuracy_drop, confidence=None)
    reference = timed.TimedReference("onnxruntime fp32", timed.Measurement(1.0, 6, 1.0, 100, 1.0),
                                     timed.Timing(100, 1), timed.Timing(100, 1))
    return TimedResult(reference=reference, runtime="onnxruntime int8", points=tuple(points), budget=config.budget,
                       fastest_within_accuracy_budget=None, most_accurate_within_time_budget=None, config=config)


def test_resplits_choose_by_the_calibration_rule_and_measure_on_the_rest():
    """8 texts pooled, 4 to choose on: the fast point is wrong on text 0 only. When text 0 falls in the part chosen
    on, the fast point is out of the (zero) budget and the slow exact one is chosen: held. When it falls in the other
    part, the fast point is chosen and loses a quarter of it: not held."""
    slow, fast = _point(1.0, 0.0, 1.0, 1.5), _point(1.0, 0.5, 1.0, 4.0)
    reference = np.ones(8, dtype=bool)
    correct = np.ones((8, 2), dtype=bool)
    correct[0, 1] = False
    split = lambda rows: (reference[rows], correct[rows])  # noqa: E731
    result = timed.resplit_timed(_result([slow, fast]), split(slice(0, 4)), split(slice(4, 8)), repeats=40, seed=3)
    rng = np.random.default_rng(3)
    first = [0 in rng.permutation(8)[:4] for _ in range(40)]
    assert result.held == pytest.approx(np.mean(first)) and 0 < result.held < 1
    assert result.test_drop_q90 == pytest.approx(25.0)  # the fast point, chosen, loses text 0 of 4
    assert result.no_point == 0
    # every text right everywhere: the fastest is always chosen, always held
    exact = timed.resplit_timed(_result([slow, fast]), (reference[:4], np.ones((4, 2), bool)),
                                (reference[4:], np.ones((4, 2), bool)), repeats=5)
    assert (exact.held, exact.test_drop_mean, exact.throughput_speedup_median) == (1.0, 0.0, 4.0)
    # at another confidence: the same rule, the promised drops bootstrapped at that level
    strict = timed.resplit_timed(_result([slow, fast]), split(slice(0, 4)), split(slice(4, 8)), repeats=40, seed=3,
                                 confidence=0.9)
    assert strict.confidence == 0.9 and strict.repeats == 40
    # no point within the budget anywhere: nothing promised, no share held
    wrong = timed.resplit_timed(_result([slow, fast]), (reference[:4], np.zeros((4, 2), bool)),
                                (reference[4:], np.zeros((4, 2), bool)), repeats=5)
    assert wrong.no_point == 1.0 and np.isnan(wrong.held)
    with pytest.raises(ValueError, match="3 columns of correctness for 2 points"):
        timed.resplit_timed(_result([slow, fast]), (reference[:4], np.ones((4, 3), bool)),
                            (reference[4:], np.ones((4, 3), bool)))


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
    # the accuracy passes of the re-split check give back every accuracy the calibration measured
    loaded = TimedResult.from_json(result)
    dev = timed.point_correctness(loaded, data.CALIBRATION)
    assert dev[0].mean() == pytest.approx(result["reference"]["accuracy"])
    assert dev[1].mean(axis=0) == pytest.approx([p["accuracy"] for p in result["points"]])
    test = timed.point_correctness(loaded, "test")
    assert test[0].mean() == pytest.approx(result["test"]["reference"]["accuracy"])
    k = next(i for i, p in enumerate(result["points"]) if (p["width"], p["speed"]) == (fastest["width"], fastest["speed"]))
    chosen_on_test = next(p for p in result["test"]["points"] if p["choice"] == "fastest_within_accuracy_budget")
    assert test[1][:, k].mean() == pytest.approx(chosen_on_test["accuracy"])
    resplit = timed.resplit_timed(loaded, dev, test, repeats=5)
    assert resplit.repeats == 5 and 0 <= resplit.held <= 1 and resplit.throughput_speedup_median > 0
    # benchmarks/resplit_timed.py does the same from the calibration folder
    spec = importlib.util.spec_from_file_location("resplit_timed", ROOT / "benchmarks" / "resplit_timed.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--calibration", str(tmp_path / "timed"), "--repeats", "5", "--confidence", "0.99",
                        "--simultaneous", "--sequence", "--output", str(tmp_path / "resplit.md")]) == 0
    written = json.loads((tmp_path / "resplit.json").read_text())
    assert written["resplit"] == resplit.to_json() and written["dev_texts"] == len(dev[0])
    stricter = timed.resplit_timed(loaded, dev, test, repeats=5, confidence=0.99)
    together = timed.resplit_timed(loaded, dev, test, repeats=5, rule="simultaneous")
    in_turn = timed.resplit_timed(loaded, dev, test, repeats=5, rule="fixed sequence")
    assert written["other_confidences"][0] == {**stricter.to_json(), "simultaneous": False, "rule": "per point"}
    assert written["other_confidences"][1] == {**together.to_json(), "simultaneous": True, "rule": "simultaneous"}
    same = json.dumps({**in_turn.to_json(), "simultaneous": False, "rule": "fixed sequence"}, sort_keys=True)
    assert json.dumps(written["other_confidences"][3], sort_keys=True) == same  # NaN when no re-split chose a point
    assert len(written["other_confidences"]) == 5  # and 0.99 simultaneous, 0.99 in sequence
    with pytest.raises(ConfigError, match="unknown promise rule 'max-t': one of per point, fixed sequence, simul"):
        timed.resplit_timed(loaded, dev, test, repeats=5, rule="max-t")
    # the correctness it wrote gives the same re-splits without running the exports again
    saved = tmp_path / "resplit.correctness.npz"
    with np.load(saved) as f:
        np.testing.assert_array_equal(f["test_points"], test[1])
    assert script.main(["--calibration", str(tmp_path / "timed"), "--repeats", "5", "--correctness", str(saved),
                        "--output", str(tmp_path / "again.md")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["resplit"] == written["resplit"]
    assert f"kept its budget on the other part in **{100 * resplit.held:.0f} %** of the re-splits that chose" in (tmp_path / "resplit.md").read_text()
    assert cli.main(["calibrate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data), "--output",
                     str(tmp_path / "x"), "--min-throughput-speedup", "2"]) == 2
    assert "need --runtime" in capsys.readouterr().err
