"""Promises from calibrations, and exports that carry them: a timed calibration's export shipped with the very files
it measured, a FLOPs calibration's width exported with its promise, both readable by the runtimes."""
import json

import pytest

from paddle_dynafast import cli
from paddle_dynafast.analysis import promise as promises
from paddle_dynafast.analysis.calibrate import run_calibration
from paddle_dynafast.analysis.results import CalibrationResult, TimedResult
from paddle_dynafast.analysis.timed import run_timed_calibration
from paddle_dynafast.config import BootstrapConfig, CalibrateConfig, DataConfig, ExportConfig, TimedCalibrateConfig
from paddle_dynafast.errors import ConfigError, MissingFileError
from paddle_dynafast.runtime.export_info import ExportInfo
from paddle_dynafast.runtime.manifest import sha256


@pytest.fixture(scope="module")
def timed_dir(tmp_path_factory, toy_data, tiny_dynafast_dir):
    out = tmp_path_factory.mktemp("timed") / "timed"
    run_timed_calibration(TimedCalibrateConfig(
        model_dir=str(tiny_dynafast_dir), output_dir=str(out), data=DataConfig(str(toy_data), max_seq_len=16),
        runtime="onnxruntime", precision="int8", threads=1, widths=(1.0, 0.5), speeds=(0.0, 0.5),
        max_accuracy_drop=20.0, latency_samples=4, bootstrap=BootstrapConfig(samples=200)))  # the tiny model is weak
    return out


@pytest.fixture(scope="module")
def flops_dir(tmp_path_factory, toy_data, tiny_dynafast_dir):
    out = tmp_path_factory.mktemp("flops") / "calibration"
    run_calibration(CalibrateConfig(model_dir=str(tiny_dynafast_dir), output_dir=str(out),
                                    data=DataConfig(str(toy_data), max_seq_len=16), max_accuracy_drop=20.0,
                                    bootstrap=BootstrapConfig(samples=200)))
    return out


def test_a_timed_promise_is_about_the_program_it_ran(timed_dir, tiny_teacher_dir):
    result = TimedResult.from_json(json.loads((timed_dir / "timed.json").read_text()))
    promise, measured = promises.read_promise(timed_dir)
    chosen = result.fastest_within_accuracy_budget
    assert (promise.width, promise.speed, promise.within_budget) == (chosen.width, chosen.speed, True)
    assert promise.measured_on == "onnxruntime int8" and promise.reference == "teacher"
    assert promise.reference_dir == str(tiny_teacher_dir)
    assert promise.dev.accuracy == chosen.accuracy
    assert promise.dev.drop == pytest.approx(100 * (result.reference.measured.accuracy - chosen.accuracy))
    assert promise.dev.drop_low <= promise.dev.drop <= promise.dev.drop_high
    assert promise.promised_drop == pytest.approx(100 * chosen.promised_drop) and promise.promised_drop <= 20.0
    assert promise.throughput_speedup == chosen.throughput_speedup and promise.test is not None
    assert measured == timed_dir / "exports" / f"width-{chosen.width:g}"
    assert promise.program_files == {"model.int8.onnx": sha256(measured / "model.int8.onnx")}


def test_the_shipped_export_holds_the_files_the_calibration_measured(timed_dir, tiny_dynafast_dir, tmp_path, capsys):
    code = cli.main(["export", "--model", str(tiny_dynafast_dir), "--calibrated", str(timed_dir), "--output",
                     str(tmp_path / "shipped"), "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    promise, measured = promises.read_promise(timed_dir)
    assert f"width {promise.width:g}, speed {promise.speed:g} on onnxruntime int8" in capsys.readouterr().out
    info = ExportInfo.read(tmp_path / "shipped")  # the new manifest checks out
    assert info.promise == promise and info.width == promise.width
    for name in ("model.int8.onnx", "model.onnx", "model.pdiparams", "model.json"):
        assert sha256(tmp_path / "shipped" / name) == sha256(measured / name)
    # --width against the calibration's choice is refused, not silently replaced
    other = 1.5 - promise.width  # 0.5 <-> 1.0
    assert cli.main(["export", "--model", str(tiny_dynafast_dir), "--calibrated", str(timed_dir), "--width",
                     str(other), "--output", str(tmp_path / "x")]) == 2
    assert f"chose width {promise.width:g}" in capsys.readouterr().err


def test_a_flops_promise_is_exported_with_the_width_it_chose(flops_dir, tiny_dynafast_dir, tmp_path):
    result = CalibrationResult.from_json(json.loads((flops_dir / "calibration.json").read_text()))
    chosen = result.fewest_flops_within_accuracy_budget
    out, promise = promises.export_calibrated(flops_dir, ExportConfig(str(tiny_dynafast_dir), str(tmp_path / "e"),
                                                                      onnx=False))
    assert (promise.width, promise.speed, promise.measured_on) == (chosen.width, chosen.speed, "dygraph fp32")
    assert promise.dev.reference_accuracy == result.reference_accuracy and promise.program_files == {}
    tested = result.measured_on_test(chosen.width, chosen.speed)
    assert promise.test.accuracy == tested.accuracy
    assert promise.test.drop == pytest.approx(-100 * tested.delta)
    info = ExportInfo.read(out)
    assert info.promise == promise and info.width == chosen.width and info.exit_loop


def test_a_directory_that_is_no_calibration_is_named(tmp_path):
    with pytest.raises(MissingFileError, match="holds neither calibration.json nor timed.json"):
        promises.read_promise(tmp_path)
    (tmp_path / "timed.json").write_text(json.dumps({"reference": None, "complete": False}))
    with pytest.raises(ConfigError, match="timed.json: the timed calibration is incomplete"):
        promises.read_promise(tmp_path)
