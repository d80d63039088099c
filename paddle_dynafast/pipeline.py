"""Every stage in order into one run directory: ``paddle-dynafast pipeline`` and :func:`run_pipeline`.

The training stages of :data:`paddle_dynafast.train.STAGES` (``RUN/teacher``,
``RUN/supernet``, ``RUN/dynafast``), each reading the previous one's directory,
then ``RUN/calibration`` -> ``RUN/evaluation`` (test split) -> ``RUN/export``
(the calibrated width, exit loop inside) and ``RUN/export-full`` (the teacher
without exits, the baseline; calibrated on measured time, the very program the
promise was timed against) -> ``RUN/summary.json``. A step whose output is
complete and made with the same configuration is skipped; an interrupted
training stage resumes from its checkpoint. Widths and budgets are checked
before the first stage trains. The run directory has one pipeline at a time
(:mod:`paddle_dynafast.outputs`); the steps after training replace their own
earlier outputs in it when the configuration changed.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Dict, Optional, Union

from . import atomic, data, outputs
from .analysis.calibrate import run_calibration
from .analysis.evaluate import run_evaluation
from .analysis.promise import CALIBRATION_FILE, TIMED_FILE, export_calibrated, measured_export, read_promise
from .analysis.results import CalibrationResult, TimedResult
from .analysis.timed import run_timed_calibration
from .config import (CalibrateConfig, EvaluateConfig, ExportConfig, PipelineConfig, Precision, TimedCalibrateConfig,
                     to_dict)
from .errors import ArtifactError, MissingFileError
from .model.flops import BertShape
from .model.loading import load_tokenizer
from .model.narrow import check_widths
from .runtime import bench
from .runtime.auto import AUTO
from .runtime.export import export_is_current, export_model
from .runtime.export_info import EXPORT_FILE, ExportInfo
from .runtime.manifest import MANIFEST_FILE
from .runtime.promise import Promise
from .runtime.ship import copy_export
from .train import STAGES

logger = logging.getLogger(__name__)

AFTER_TRAINING = ("calibrate", "evaluate", "export")
"""The steps after the training stages."""


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns; the same content as ``RUN/summary.json``."""

    output_dir: Path
    summary: Dict[str, Any]


def step_dirs(root: str | Path) -> Dict[str, Path]:
    """The directory of every step of a run in ``root``, by step name."""
    root = Path(root)
    return {**{stage.name: root / stage.run_dir for stage in STAGES}, "calibrate": root / "calibration",
            "evaluate": root / "evaluation", "export": root / "export", "export_full": root / "export-full"}


def check_widths_before_training(config: PipelineConfig) -> None:
    """Every width keeps a whole number of heads of the model the run starts from (its config.json, else
    ``config.size``): refused now, not after the teacher has trained."""
    num_heads = config.size.num_heads
    if config.model_dir is not None:
        path = Path(config.model_dir) / "config.json"
        if not path.is_file():
            raise MissingFileError(f"{config.model_dir} has no config.json")
        num_heads = int(json.loads(path.read_text(encoding="utf-8"))["num_attention_heads"])
    check_widths(config.widths, BertShape(hidden_size=num_heads, num_layers=1, num_heads=num_heads, head_dim=1,
                                          intermediate_size=1, num_labels=2))


def run_pipeline(config: PipelineConfig, logdir: Optional[str] = None, trust_pickle: bool = False) -> PipelineResult:
    """Run (or finish) every step of ``config``; returns the summary written to ``summary.json``.
    ``trust_pickle`` reads a pretrained ``model_state.pdparams`` (a pickle)."""
    check_widths_before_training(config)
    with outputs.claim(config.output_dir, outputs.PIPELINE, [config.model_dir, config.data.data_dir]):
        return _run(config, logdir, trust_pickle)


def _run(config: PipelineConfig, logdir: Optional[str], trust_pickle: bool) -> PipelineResult:
    root = Path(config.output_dir)
    dirs = step_dirs(root)
    steps = [stage.name for stage in STAGES] + list(AFTER_TRAINING)
    seconds: Dict[str, float] = {}
    results: Dict[str, Any] = {}

    def step(name: str, run):  # a log line each; the training stages show a progress bar (one bar at a time)
        logger.info("pipeline stage %d/%d: %s", steps.index(name) + 1, len(steps), name)
        started = time.perf_counter()
        results[name] = run()
        seconds[name] = round(time.perf_counter() - started, 1)

    model_dir = config.model_dir
    for stage in STAGES:
        stage_config = stage.config_from_pipeline(config, model_dir, str(dirs[stage.name]))
        step(stage.name, lambda: stage(stage_config, str(Path(logdir) / stage.name) if logdir else None,
                                       trust_pickle).run())
        model_dir = str(dirs[stage.name])
    final, teacher = dirs[STAGES[-1].name], dirs[STAGES[0].name]

    step("calibrate", lambda: _calibrate(config, final, teacher, dirs["calibrate"], trust_pickle))

    evaluate_config = EvaluateConfig(model_dir=str(final), output_dir=str(dirs["evaluate"]), data=config.data)
    step("evaluate", lambda: None if atomic.written_with(dirs["evaluate"] / "evaluation.json",
                                                           to_dict(evaluate_config))
         else run_evaluation(evaluate_config, overwrite=True, trust_pickle=trust_pickle))

    promise, _ = read_promise(dirs["calibrate"])

    def export_both():
        if not _carries(dirs["export"], promise):
            export = ExportConfig(str(final), str(dirs["export"]), int8=config.int8,
                                  int8_float_products=config.int8_float_products)
            export_calibrated(dirs["calibrate"], export, overwrite=True, trust_pickle=trust_pickle)
        if isinstance(results["calibrate"], TimedResult):  # the very program the promise was measured against
            reference = measured_export(dirs["calibrate"], None)
            if not _same_files(reference, dirs["export_full"]):
                copy_export(reference, dirs["export_full"], overwrite=True)
        elif not export_is_current(dirs["export_full"], teacher, 1.0, True, onnx=True):
            export_model(ExportConfig(str(teacher), str(dirs["export_full"]), no_exit=True), overwrite=True,
                         trust_pickle=trust_pickle)

    step("export", export_both)
    latency = _quick_bench(dirs, promise.speed, config) if config.bench_samples else None
    first, supernet = results[STAGES[0].name], results["supernet"]
    summary = {
        "config": to_dict(config), "paths": {k: str(v) for k, v in dirs.items()},
        "teacher": {k: first.metrics.get(k) for k in ("dev_accuracy", "test_accuracy", "train_seconds")},
        "widths": {w: {k: v for k, v in row.items() if k in ("dev_accuracy", "test_accuracy", "parameters",
                                                              "dev_mean_flops")}
                   for w, row in supernet.metrics["widths"].items()},
        "operating_point": {"width": promise.width, "speed": promise.speed, "dev_accuracy": promise.dev.accuracy,
                            "dev_flops_speedup": promise.flops_speedup},
        "test_at_operating_point": _tested(results["calibrate"], promise),
        "promise": promise.to_json(),
        "latency": latency,
        "stage_seconds": seconds,
        "sizes_mb": {k: round(sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6, 1)
                     for k, d in dirs.items() if d.is_dir()},
    }
    atomic.write_json(root / "summary.json", summary)
    return PipelineResult(root, summary)


def _calibrate(config: PipelineConfig, model: Path, teacher: Path, output: Path,
               trust_pickle: bool) -> Union[CalibrationResult, TimedResult]:
    """The calibrate step: on measured time as the served program (``config.served``), else on FLOPs; the teacher is
    the reference. Skipped when its output was written with the same configuration."""
    common = dict(model_dir=str(model), output_dir=str(output), data=config.data, teacher_dir=str(teacher),
                  max_accuracy_drop=config.max_accuracy_drop, confidence=config.confidence)
    if config.served is None:
        flops = CalibrateConfig(**common, min_flops_speedup=config.min_flops_speedup)
        if atomic.written_with(output / CALIBRATION_FILE, to_dict(flops)):
            return CalibrationResult.from_json(atomic.read_json(output / CALIBRATION_FILE))
        _remove_other_kind(output, TIMED_FILE)
        return run_calibration(flops, overwrite=True, trust_pickle=trust_pickle)
    runtime, precision = config.served
    timed = TimedCalibrateConfig(**common, runtime=runtime, precision=precision, speeds=config.timed_speeds,
                                 rounds=config.timed_rounds, int8_float_products=config.int8_float_products)
    if atomic.written_with(output / TIMED_FILE, to_dict(timed)):
        return TimedResult.from_json(atomic.read_json(output / TIMED_FILE))
    _remove_other_kind(output, CALIBRATION_FILE)
    return run_timed_calibration(timed, overwrite=True, trust_pickle=trust_pickle)


def _remove_other_kind(output: Path, marker: str) -> None:
    """The run's calibration directory made the other way (on FLOPs, or on measured time) is the pipeline's own
    earlier output: it is replaced, as every step replaces its own output when the configuration changed."""
    if (output / marker).is_file():
        logger.info("%s was calibrated the other way before (%s): calibrating again", output, marker)
        atomic.remove(output)


def _tested(calibration: Union[CalibrationResult, TimedResult], promise: Promise) -> Optional[Dict[str, Any]]:
    """The operating point measured on test: its accuracy and drop against the reference."""
    if isinstance(calibration, CalibrationResult):
        tested = calibration.measured_on_test(promise.width, promise.speed)
        return None if tested is None else asdict(tested)
    return None if promise.test is None else {"width": promise.width, "speed": promise.speed,
                                               **asdict(promise.test)}


def _same_files(source: Path, copy: Path) -> bool:
    """``copy`` has the manifest of ``source`` (its files are checked against it when a runtime opens them)."""
    try:
        return (copy / MANIFEST_FILE).read_bytes() == (source / MANIFEST_FILE).read_bytes()
    except OSError:
        return False


def _carries(directory: Path, promise: Promise) -> bool:
    """``directory`` holds an intact export carrying ``promise``."""
    try:
        return ExportInfo.read(directory).promise == promise
    except (ArtifactError, MissingFileError):
        return False


def summary_table(summary: Dict[str, Any]) -> str:
    """The end of ``paddle-dynafast pipeline``: accuracy, FLOPs speed-up and, for the two exported models, latency
    and throughput, one row per model, as Markdown; the stage times below it."""
    teacher, widths, point = summary["teacher"], summary["widths"], summary["operating_point"]
    full_flops = widths.get("1.0", {}).get("dev_mean_flops")
    timed = (summary.get("latency") or {}).get("results", [])  # the exported teacher first, then the adaptive model
    reference, adaptive = (timed + [None, None])[:2]

    def pct(value):
        return "" if value is None else f"{100 * value:.2f}"

    def timing(result, ratios: bool):
        if result is None:
            return " | "
        q = result["ratios"]
        return (f"{result['latency_ms_median']:.2f} ms" + (f" ({q['latency_speedup']:.2f}x)" if ratios else "")
                + f" | {result['throughput']:.0f}/s" + (f" ({q['throughput_speedup']:.2f}x)" if ratios else ""))

    lines = ["| model | dev acc | test acc | FLOPs speed-up (dev) | latency b=1 | throughput b=32 |",
             "| --- | --- | --- | --- | --- | --- |",
             f"| teacher (exported, no exit) | {pct(teacher['dev_accuracy'])} | {pct(teacher['test_accuracy'])} "
             f"| 1.00x | {timing(reference, False)} |"]
    for width, row in widths.items():
        if width != "teacher":
            speedup = f"{full_flops / row['dev_mean_flops']:.2f}x" if full_flops and row.get("dev_mean_flops") else ""
            lines.append(f"| supernet width {float(width):g} | {pct(row['dev_accuracy'])} "
                         f"| {pct(row.get('test_accuracy'))} | {speedup} |  |  |")
    test = summary.get("test_at_operating_point") or {}
    accuracy, against, how = test.get("accuracy"), teacher.get("test_accuracy"), "dygraph fp32"
    if adaptive is not None:  # measured on the runtime and precision it is served with: the accuracy that counts
        accuracy, against, how = adaptive["accuracy"], reference["accuracy"], adaptive["note"].split(", ")[1]
    cost = "" if accuracy is None or against is None else f" ({100 * (accuracy - against):+.2f})"
    lines.append(f"| **width {point['width']:g}, speed {point['speed']:g}** (calibrated, exported; {how}) "
                 f"| {pct(point['dev_accuracy'])} | {pct(accuracy)}{cost} "
                 f"| {point['dev_flops_speedup']:.2f}x | {timing(adaptive, True)} |")
    promise = summary.get("promise")
    if promise is not None:
        p = Promise.from_json(promise)
        lines += ["", f"promise: {p.summary()}; dev drop {_drop(p.dev)}"
                  + ("" if p.test is None else f", test drop {_drop(p.test)}")
                  + ("" if p.throughput_speedup is None else f"; measured on dev: {p.throughput_speedup:.2f}x "
                     f"throughput, {p.latency_speedup:.2f}x latency against the teacher on {p.reference_runtime}")]
    seconds = summary["stage_seconds"]
    lines.append("")
    lines.append("stages: " + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items())
                 + f" (total {sum(seconds.values()):.1f} s)")
    return "\n".join(lines) + "\n"


def _drop(split) -> str:
    """``0.34 [-0.11, 0.80]`` points."""
    interval = "" if split.drop_low is None else f" [{split.drop_low:.2f}, {split.drop_high:.2f}]"
    return f"{split.drop:.2f}{interval}"


def _quick_bench(dirs: Dict[str, Path], speed: float, config: PipelineConfig) -> Dict[str, Any]:
    """Latency and throughput of the exported adaptive model against the exported teacher, on test."""
    info = atomic.read_json(dirs["export"] / EXPORT_FILE)
    splits = data.load_splits(config.data)
    split = "test" if "test" in splits else "dev"
    tokenizer = load_tokenizer(dirs["export"])
    features = data.encode(splits[split], tokenizer, info["max_seq_len"], info["labels"])
    runtime, precision = config.served or (AUTO, str(Precision.FP32))
    systems = [bench.exported_system(dirs["export_full"], name="teacher, no exit, fp32"),
               bench.exported_system(dirs["export"], speed, precision=precision, runtime=runtime,
                                     name=f"width {info['width']:g}, speed {speed:g}, {precision}")]
    results = bench.measure(systems, features, [f.label for f in features], tokenizer.pad_token_id,
                            samples=min(config.bench_samples, len(features)), rounds=2)
    return {"split": split, "results": bench.to_json(results), "table": bench.markdown(results, 32)}


QUICK_SPEEDS = (0.0, 0.4, 0.7, 0.8, 0.85, 0.9)
"""The demo's speed grid for the timed calibration (each point: an untimed and a timed pass over dev). After one
epoch the final classifier, and so the branches distilled from it, are unsure: the samples exit at high speeds."""


def quick(config: PipelineConfig, max_examples: int = 1200, max_eval_examples: int = 300,
          supernet_steps: int = 6) -> PipelineConfig:
    """The demo's quick mode (``make demo``, at most 5 minutes on 2 cores): the first ``max_examples`` training
    examples and ``max_eval_examples`` of dev and test, one epoch per stage (the teacher's at twice the learning
    rate, or its few steps leave it at chance), widths 1.0 and 0.5, and the adaptive model served in int8. The
    supernet, the slowest stage per step (the teacher and every width run on each batch), stops after
    ``supernet_steps`` steps (a sixth of its epoch) with 128 examples to score importance; every stage
    evaluates on ``max_eval_examples`` (a standard error of about 2.5 accuracy points); the timed calibration measures
    the speeds of :data:`QUICK_SPEEDS` in one timed round each, the final timing 50 texts at batch 1; every product
    runs in int8 (the mixed-precision sweep would take 2 of the 5 minutes). The demo shows
    the widths and the win of the calibrated export, not how accurate a short run can be."""
    one = {"epochs": 1}
    cut = replace(config.data, max_examples=max_examples, max_eval_examples=max_eval_examples)
    return replace(config, data=cut, importance_examples=128, timed_speeds=QUICK_SPEEDS, timed_rounds=1,
                   bench_samples=50, widths=(1.0, 0.5), int8=True, int8_float_products=0,
                   finetune=replace(config.finetune, lr=2 * config.finetune.lr, **one),
                   supernet=replace(config.supernet, max_steps=supernet_steps, **one),
                   distill=replace(config.distill, **one))
