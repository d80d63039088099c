"""The typed results of evaluate and calibrate write the JSON the commands wrote before they were typed.

``fixtures/results_before/`` holds files written by the code before the results were typed, on the tiny model
and the toy data of this suite: calibrate with a test split and two re-splits (``calibration.json``), with the raw
dev drop (``calibration-raw-drop.json``) and without a test split (``calibration-no-test.json``); evaluate with
and without patience; calibrate --runtime with and without a test split. Each one, read and written again, is
the same file byte for byte.
"""
import json
from pathlib import Path

import pytest

from paddle_dynafast import atomic
from paddle_dynafast.analysis.results import (CalibrationResult, EvaluationResult, GridPoint, Measurement,
                                              OperatingPoint, ResplitResult, TimedResult)
from paddle_dynafast.config import Budget, CalibrateConfig, EvaluateConfig, TimedCalibrateConfig

BEFORE = Path(__file__).resolve().parent / "fixtures" / "results_before"


@pytest.mark.parametrize("name, cls", [
    ("evaluation.json", EvaluationResult), ("evaluation-no-patience.json", EvaluationResult),
    ("calibration.json", CalibrationResult), ("calibration-raw-drop.json", CalibrationResult),
    ("calibration-no-test.json", CalibrationResult), ("timed.json", TimedResult),
    ("timed-no-test.json", TimedResult)])
def test_a_file_written_before_reads_and_writes_back_the_same(name, cls, tmp_path):
    """Byte for byte, but for what was added since the file was written: the configs' new fields at their defaults
    (``teacher_dir``, the data's ``holdout``, the timed calibration's ``rounds`` and
    ``int8_float_products``), the timed result's reference
    model and program hashes, empty, and the re-splits' ``throughput_speedup_median`` and ``no_point`` (measured
    time only)."""
    text = (BEFORE / name).read_text(encoding="utf-8")
    result = cls.from_json(json.loads(text))
    written = result.to_json()
    added = {"teacher_dir": None, "program_files": {}} if cls is TimedResult else {}
    assert {k: written[k] for k in added} == added
    written = {k: v for k, v in written.items() if k not in added}
    if written.get("config") is not None:
        assert written["config"]["data"].pop("holdout") == 0
        if cls is not EvaluationResult:
            assert written["config"].pop("teacher_dir") is None
        if cls is TimedResult:
            assert written["config"].pop("rounds") == 2
            assert written["config"].pop("int8_float_products") == 4
    if written.get("resplits") is not None:
        assert written["resplits"].pop("throughput_speedup_median") is None
        assert written["resplits"].pop("no_point") == 0.0
    atomic.write_json(tmp_path / name, written)  # as the commands write it
    assert (tmp_path / name).read_text(encoding="utf-8") == text
    assert cls.from_json(result.to_json()) == result


def _read(name: str) -> dict:
    return json.loads((BEFORE / name).read_text(encoding="utf-8"))


def test_calibration_is_typed():
    result = CalibrationResult.from_json(_read("calibration.json"))
    assert result.budget == Budget(max_accuracy_drop=1.0, confidence=0.8, min_flops_speedup=3.0)
    assert isinstance(result.config, CalibrateConfig) and result.config.budget == result.budget
    assert sorted(result.per_width, reverse=True) == list(result.per_width) == [1.0, 0.75, 0.5, 0.25]
    chosen = result.fewest_flops_within_accuracy_budget
    assert isinstance(chosen, OperatingPoint) and isinstance(chosen, GridPoint)
    assert result.budget.within_accuracy(chosen.promised_drop)
    assert isinstance(result.resplits, ResplitResult) and result.resplits.repeats == 2
    # every chosen point was measured on test, once
    assert len(result.test) == len(result.operating_points())
    for width, speed in result.operating_points():
        measured = result.measured_on_test(width, speed)
        assert (measured.width, measured.speed) == (width, speed) and measured.delta is not None
    assert result.measured_on_test(0.123, 0.0) is None
    raw = CalibrationResult.from_json(_read("calibration-raw-drop.json"))
    assert raw.budget.confidence is None and raw.fewest_flops_within_accuracy_budget.promised_drop is None
    assert raw.resplits is None and "resplits" not in raw.to_json()
    older = {k: v for k, v in _read("calibration-raw-drop.json").items() if k != "confidence"}  # before it existed
    assert CalibrationResult.from_json(older).budget == raw.budget


def test_a_test_split_not_measured_is_none_with_its_reason():
    calibration = CalibrationResult.from_json(_read("calibration-no-test.json"))
    assert calibration.test is None and calibration.test_fingerprint is None
    assert calibration.test_not_measured.endswith("data-notest has no test split")
    assert calibration.measured_on_test(1.0, 0.0) is None
    assert calibration.to_json()["test"] == "not measured: " + calibration.test_not_measured
    timed = TimedResult.from_json(_read("timed-no-test.json"))
    assert timed.test is None and timed.test_not_measured.endswith("data-notest has no test split")


def test_timed_calibration_is_typed():
    result = TimedResult.from_json(_read("timed.json"))
    assert result.budget == Budget(max_accuracy_drop=2, confidence=0.9, min_flops_speedup=None,
                                   min_throughput_speedup=0.5)
    assert isinstance(result.config, TimedCalibrateConfig) and result.config.budget == result.budget
    assert result.runtime == "onnxruntime int8" and len(result.points) == 2 * 2
    assert result.reference.measured.throughput == pytest.approx(
        (result.reference.first.throughput + result.reference.last.throughput) / 2)
    assert isinstance(result.test.reference, Measurement)
    assert list(result.test.points) == ["fastest_within_accuracy_budget", "most_accurate_within_time_budget"]
    fastest = result.test.points["fastest_within_accuracy_budget"]
    chosen = result.fastest_within_accuracy_budget
    assert (fastest.width, fastest.speed) == (chosen.width, chosen.speed)
    with pytest.raises(ValueError, match="incomplete"):
        TimedResult.from_json({"reference": None, "complete": False})  # written at the start of a run


def test_evaluation_is_typed():
    result = EvaluationResult.from_json(_read("evaluation.json"))
    assert isinstance(result.config, EvaluateConfig) and result.config.patience == (1, 2)
    assert len(result.points) == 4 * 3 and len(result.patience_points) == 4 * 2
    assert sorted(result.patience_vs_entropy) == [0.25, 0.5, 0.75, 1.0]
    bare = EvaluationResult.from_json(_read("evaluation-no-patience.json"))
    assert bare.patience_points == () and bare.patience_vs_entropy == {}
    assert "patience_points" not in bare.to_json()
