"""The promise of a calibration, and exports that carry it (``export --calibrated DIR``, ``pipeline``).

A calibration on FLOPs (``calibration.json``) promises about the model in
dygraph float32; a calibration on measured time (``timed.json``) about the
exported program it ran, on its runtime and precision. Either way the promise
is about the point it chose (the fewest FLOPs, or the highest measured
throughput, within the accuracy budget) against the reference it measured (the
teacher when it found one). :func:`export_calibrated` writes that point: a
timed calibration's export is shipped as it was measured
(:func:`~paddle_dynafast.runtime.ship.ship_measured`: the same files), a FLOPs
calibration's width is exported from the model, and the promise goes into
``export.json`` either way.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Optional, Tuple

from .. import atomic
from ..config import ExportConfig
from ..errors import ConfigError, MissingFileError
from ..runtime.export import export_model
from ..runtime.manifest import read_sign_key
from ..runtime.promise import Promise, SplitDrop
from ..runtime.ship import ship_measured
from .results import CalibrationResult, GridPoint, TimedPoint, TimedResult

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
TIMED_FILE = "timed.json"


def _split(point, accuracy_of_reference: Optional[float] = None) -> SplitDrop:
    """A point against its reference: the reference's accuracy is the point's minus its delta."""
    reference = point.accuracy - point.delta if accuracy_of_reference is None else accuracy_of_reference
    return SplitDrop(accuracy=point.accuracy, reference_accuracy=reference, drop=100 * (reference - point.accuracy),
                     drop_low=None if point.delta_high is None else -100 * point.delta_high,
                     drop_high=None if point.delta_low is None else -100 * point.delta_low)


def from_calibration(result: CalibrationResult, path: str | Path) -> Promise:
    """The promise of a calibration on FLOPs: its fewest-FLOPs point within the accuracy budget (else the full model,
    not within it)."""
    chosen = result.fewest_flops_within_accuracy_budget
    point: GridPoint = chosen or result.full_model
    tested = result.measured_on_test(point.width, point.speed)
    promised = None if chosen is None or chosen.promised_drop is None else 100 * chosen.promised_drop
    return Promise(width=point.width, speed=point.speed, measured_on="dygraph fp32", reference=result.reference,
                   max_accuracy_drop=result.budget.max_accuracy_drop, confidence=result.budget.confidence,
                   within_budget=chosen is not None, dev=_split(point, result.reference_accuracy),
                   promised_drop=promised,
                   test=None if tested is None or tested.delta is None else _split(tested),
                   flops_speedup=point.flops_speedup, reference_dir=result.teacher_dir, calibration=str(path))


def from_timed(result: TimedResult, path: str | Path) -> Promise:
    """The promise of a calibration on measured time: its fastest point within the accuracy budget (else width 1.0
    at speed 0, not within it), about the program it ran."""
    chosen = result.fastest_within_accuracy_budget
    point: Optional[TimedPoint] = chosen or next(
        (p for p in result.points if p.width == 1.0 and p.speed == 0.0), None)
    if point is None:
        raise ConfigError(f"{path}: no point is within the budget, and width 1.0 at speed 0 was not measured")
    tested = None if result.test is None else result.test.points.get("fastest_within_accuracy_budget")
    if chosen is None or tested is None or tested.delta is None:
        test = None
    else:
        test = _split(tested, result.test.reference.accuracy)
    return Promise(width=point.width, speed=point.speed, measured_on=result.runtime,
                   reference="full model" if result.teacher_dir is None else "teacher",
                   max_accuracy_drop=result.budget.max_accuracy_drop, confidence=result.budget.confidence,
                   within_budget=chosen is not None,
                   dev=_split(point, result.reference.measured.accuracy) if point.delta is None else _split(point),
                   promised_drop=None if result.budget.confidence is None else 100 * point.promised_drop,
                   test=test, flops_speedup=point.flops_speedup, throughput_speedup=point.throughput_speedup,
                   latency_speedup=point.latency_speedup, reference_runtime=result.reference.runtime,
                   reference_dir=result.teacher_dir, calibration=str(path),
                   program_files=dict(result.program_files.get(point.width, {})))


def measured_export(calibration_dir: str | Path, width: Optional[float]) -> Path:
    """Where ``calibrate --runtime`` keeps the export it measured at ``width`` (exit loop inside), or with ``None``
    the reference's (the teacher without exits)."""
    return Path(calibration_dir) / "exports" / ("full" if width is None else f"width-{width:g}")


def read_promise(calibration_dir: str | Path) -> Tuple[Promise, Optional[Path]]:
    """The promise of the calibration in ``calibration_dir`` and, for one on measured time, the export directory it
    measured at the chosen width (None on FLOPs)."""
    directory = Path(calibration_dir)
    if (directory / TIMED_FILE).is_file():
        try:
            result = TimedResult.from_json(atomic.read_json(directory / TIMED_FILE))
        except ValueError as error:
            raise ConfigError(f"{directory / TIMED_FILE}: {error}") from None
        promise = from_timed(result, directory / TIMED_FILE)
        return promise, measured_export(directory, promise.width)
    if (directory / CALIBRATION_FILE).is_file():
        return from_calibration(CalibrationResult.from_json(atomic.read_json(directory / CALIBRATION_FILE)),
                                directory / CALIBRATION_FILE), None
    raise MissingFileError(f"{directory} holds neither {CALIBRATION_FILE} nor {TIMED_FILE}: not a calibrate output")


def export_calibrated(calibration_dir: str | Path, config: ExportConfig, overwrite: bool = False,
                      trust_pickle: bool = False, sign_key: Optional[bytes] = None) -> Tuple[Path, Promise]:
    """Export the point the calibration in ``calibration_dir`` chose, with its promise (see the module docstring).
    ``config.width`` is replaced by the chosen width; ``config.output_dir``, the sign key and, on FLOPs, the rest of
    ``config`` apply as in :func:`~paddle_dynafast.runtime.export.export_model`. Returns the directory and the
    promise."""
    promise, measured = read_promise(calibration_dir)
    if not promise.within_budget:
        logger.warning("%s: no point is within the budget of %g points; exporting width %g at speed %g, which does "
                       "not keep it", calibration_dir, promise.max_accuracy_drop, promise.width, promise.speed)
    if measured is not None:
        if sign_key is None and config.sign_key_file:
            sign_key = read_sign_key(config.sign_key_file)
        return ship_measured(measured, config.output_dir, promise, overwrite, sign_key), promise
    if config.int8:
        logger.warning("%s promises about the model in dygraph fp32 (calibrated on FLOPs); the int8 program of this "
                       "export was not measured: calibrate with --runtime onnxruntime --precision int8 for a promise "
                       "about it", calibration_dir)
    out = export_model(replace(config, width=promise.width, no_exit=False), overwrite=overwrite,
                       trust_pickle=trust_pickle, sign_key=sign_key, promise=promise)
    return out, promise
