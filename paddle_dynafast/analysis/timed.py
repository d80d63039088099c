"""Calibration on measured time: (width, speed) chosen for a runtime and a precision by wall-clock on this machine.

:mod:`~paddle_dynafast.analysis.calibrate` chooses on accuracy and analytic
FLOPs, in dygraph float32. What a deployment pays is wall-clock time on its own
runtime, in its own precision, and int8 or bfloat16 move the branches'
entropies, so the same speed exits differently. Here every width is exported
(ONNX and int8 included) and run on the dev split at a grid of speeds on the
runtime and precision asked for: accuracy, mean exit layer, analytic FLOPs,
throughput at batch 32 and median latency at batch 1 of every point, against the
full model (width 1.0, no exit, float32) on the reference runtime (by default
the fastest float32 runtime here, :mod:`paddle_dynafast.runtime.choose`),
measured at the start and at the end (their mean). Then:

* the fastest point (throughput at batch 32) whose dev accuracy stays within
  ``max_accuracy_drop`` points of the reference with probability ``confidence``
  under the paired bootstrap, as :mod:`~paddle_dynafast.analysis.calibrate`
  chooses (its promised drop);
* the most accurate point within the wall-clock budget
  (``min_throughput_speedup`` and/or ``max_latency_ms``);

and both are measured again on the test split. Only measured points are
chosen: nothing is interpolated. The result is a
:class:`~paddle_dynafast.analysis.results.TimedResult`.

How often the promise holds on texts it was not chosen on, without timing
again: :func:`point_correctness` runs every measured point's export (and the
reference) over a split for accuracy alone, and :func:`resplit_timed` pools dev
and test, re-splits them at random, chooses on the dev-sized part by the same
rule (the highest dev-measured throughput whose promised drop is within the
budget) and measures the drop on the other part.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .. import atomic, data, outputs, stats
from ..config import INT8_ACTIVATIONS, BootstrapConfig, Budget, ExportConfig, TimedCalibrateConfig
from ..errors import ConfigError, DataError
from ..model.dynafast import DynaFastModel
from ..model.loading import load_tokenizer
from ..runtime import bench
from ..runtime.auto import open_runtime
from ..runtime.base import Runtime
from ..runtime.choose import choose
from ..runtime.export import export_is_current, export_model
from ..runtime.export_info import INT8_ONNX_FILE, ONNX_FILE, PROGRAM, ExportInfo
from ..runtime.manifest import MANIFEST_FILE
from .calibrate import check_rule, find_teacher, promised_drops, rule_drops
from .evaluate import split_examples
from .promise import measured_export
from .results import Measurement, ResplitResult, TimedPoint, TimedReference, TimedResult, TimedTest, Timing

logger = logging.getLogger(__name__)

TIMED = outputs.Output("calibrate --runtime", "timed.json", "reference", files=("timed.json", "timed.md", "exports"))


def measure(runtime: Runtime, features, speed: float, batch_size: int, latency_samples: int,
            rounds: int) -> Tuple[Measurement, np.ndarray]:
    """Accuracy, exits, FLOPs, throughput and latency of ``runtime`` at ``speed`` on labelled ``features``, and
    which examples it got right (``[examples]``); one untimed pass first (the accuracy pass), so runtimes that
    prepare kernels per shape are timed warm."""
    pad = load_tokenizer(runtime.info.directory).pad_token_id
    gold = np.array([f.label for f in features])
    tokens = np.array([len(f.input_ids) for f in features])
    system = bench.runtime_system(runtime, speed)
    full = bench.batches(features, pad, batch_size)
    labels, exits = bench.run_all(system, full, len(features))
    singles = bench.batches(features[:latency_samples], pad, 1)
    latency, passes = bench.time_systems([system], full, singles, rounds)
    latency, passes = latency[system.name], passes[system.name]
    measured = Measurement(accuracy=float((labels == gold).mean()), mean_exit_layer=float(exits.mean()),
                           mean_flops=float(system.flops(tokens, exits).mean()), throughput=float(np.median(passes)),
                           latency_ms=1000 * float(np.median(latency)))
    return measured, labels == gold


def run_timed_calibration(config: TimedCalibrateConfig, overwrite: bool = False,
                          trust_pickle: bool = False) -> TimedResult:
    """``paddle-dynafast calibrate --runtime R``: see the module docstring; writes timed.json and timed.md (and the
    exports it measured, in ``exports/``)."""
    with outputs.claim(config.output_dir, TIMED, [config.model_dir, config.data.data_dir], overwrite):
        atomic.write_json(Path(config.output_dir) / "timed.json", {"reference": None, "complete": False})
        return _timed(config, trust_pickle)


def _exports(config: TimedCalibrateConfig, widths: Sequence[float], reference: Path,
             trust_pickle: bool) -> Dict[object, Path]:
    """The reference (the teacher, else the full model) without exits (key ``"full"``; ONNX, float32: the reference
    runs in float32) and every width with the exit loop, ONNX and int8 included."""
    wanted = {"full": (reference, 1.0, True), **{w: (Path(config.model_dir), w, False) for w in widths}}
    out = {}
    for key, (source, width, no_exit) in wanted.items():
        directory = measured_export(config.output_dir, None if key == "full" else width)
        int8 = None if no_exit else INT8_ACTIVATIONS[0]
        kept = config.int8_float_products if int8 else 0
        if not export_is_current(directory, source, width, no_exit, onnx=True, int8=int8, int8_float_products=kept):
            export_model(ExportConfig(str(source), directory, width=width, no_exit=no_exit, onnx=True,
                                      int8=int8 is not None, int8_float_products=kept),
                         overwrite=True, trust_pickle=trust_pickle)
        out[key] = directory
    return out


def _timed(config: TimedCalibrateConfig, trust_pickle: bool) -> TimedResult:
    model = DynaFastModel.load(config.model_dir, trust_pickle=trust_pickle)
    widths = config.widths or model.widths
    teacher = find_teacher(config.model_dir, config.teacher_dir)
    dirs = _exports(config, widths, teacher or Path(config.model_dir), trust_pickle)
    splits = data.load_splits(config.data)

    def features(split: str, directory: Path):
        examples = split_examples(splits, split, config.data.data_dir)
        return data.encode(examples, load_tokenizer(directory), config.data.max_seq_len, model.labels, quiet=True)

    reference_kind, reference_options = config.reference_runtime, {}
    if reference_kind == "auto":
        candidate, _ = choose(dirs["full"], "fp32", config.threads, "throughput")
        reference_kind, reference_options = candidate.runtime, dict(candidate.options)
    reference_runtime = open_runtime(dirs["full"], reference_kind, config.threads, **reference_options)
    reference_name = f"{reference_kind} fp32" + "".join(f" {k}={v}" for k, v in reference_options.items())
    dev = features(data.CALIBRATION, dirs["full"])
    first, first_correct = measure(reference_runtime, dev, 0.0, config.batch_size, config.latency_samples,
                                   config.rounds)

    name = f"{config.runtime} {config.precision}"
    measured, correct = [], []
    for width in widths:
        runtime = open_runtime(dirs[width], config.runtime, config.threads, config.precision)
        for speed in config.speeds:
            m, c = measure(runtime, dev, speed, config.batch_size, config.latency_samples, config.rounds)
            measured.append((width, speed, m))
            correct.append(c)
            logger.info("%s width %g speed %g: dev %.2f, %.0f/s, %.2f ms", name, width, speed, 100 * m.accuracy,
                        m.throughput, m.latency_ms)
    last, _ = measure(reference_runtime, dev, 0.0, config.batch_size, config.latency_samples, config.rounds)
    reference = TimedReference(
        runtime=reference_name, first=Timing(first.throughput, first.latency_ms),
        last=Timing(last.throughput, last.latency_ms),
        measured=Measurement(accuracy=first.accuracy, mean_exit_layer=first.mean_exit_layer,
                             mean_flops=first.mean_flops, throughput=(first.throughput + last.throughput) / 2,
                             latency_ms=(first.latency_ms + last.latency_ms) / 2))
    matrix = np.stack(correct, axis=1)  # [examples, points]
    budget = config.budget
    if budget.confidence is None:
        promised = first.accuracy - matrix.mean(axis=0)
    else:
        promised = promised_drops(matrix, first_correct, budget.confidence, config.bootstrap)
    dev_points = tuple(replace(_point(width, speed, name, m, reference.measured, float(d)),
                               **_interval(matrix[:, k], first_correct, config.bootstrap))
                       for k, ((width, speed, m), d) in enumerate(zip(measured, promised)))
    fastest, most_accurate = choose_points(dev_points, budget)
    test, missing = _on_test(config, (fastest, most_accurate), dirs, features, reference_runtime, name)
    result = TimedResult(reference=reference, runtime=name, points=dev_points, budget=budget,
                         fastest_within_accuracy_budget=fastest, most_accurate_within_time_budget=most_accurate,
                         test=test, config=config, teacher_dir=None if teacher is None else str(teacher),
                         program_files={float(w): program_files(dirs[w], config.runtime, config.precision)
                                        for w in widths})
    if missing is not None:
        result = replace(result, test_not_measured=missing)
    out = Path(config.output_dir)
    atomic.write_json(out / "timed.json", result.to_json())
    atomic.write_text(out / "timed.md", markdown(result))
    return result


def _point(width: float, speed: float, runtime: str, m: Measurement, reference: Measurement,
           promised_drop: float = 0.0) -> TimedPoint:
    return TimedPoint(width=width, speed=speed, runtime=runtime, accuracy=m.accuracy,
                      mean_exit_layer=m.mean_exit_layer, mean_flops=m.mean_flops, throughput=m.throughput,
                      latency_ms=m.latency_ms, promised_drop=promised_drop,
                      flops_speedup=reference.mean_flops / m.mean_flops,
                      throughput_speedup=m.throughput / reference.throughput,
                      latency_speedup=reference.latency_ms / m.latency_ms)


def _interval(correct: np.ndarray, reference: np.ndarray, bootstrap: BootstrapConfig) -> Dict[str, float]:
    """``delta``, ``delta_low``, ``delta_high`` of a point against the reference on the same examples (fractions)."""
    interval = stats.paired_bootstrap(correct, reference, bootstrap.samples, bootstrap.seed, bootstrap.level)
    return {"delta": interval.difference, "delta_low": interval.low, "delta_high": interval.high}


def program_files(directory: Path, runtime: str, precision: str) -> Dict[str, str]:
    """The sha256 (from the export's verified manifest) of the files ``runtime`` runs in ``precision``."""
    names = {("onnxruntime", "fp32"): (ONNX_FILE,), ("onnxruntime", "int8"): (INT8_ONNX_FILE,)}.get(
        (str(runtime), str(precision)), (f"{PROGRAM}.json", f"{PROGRAM}.pdiparams"))
    listed = atomic.read_json(Path(directory) / MANIFEST_FILE)["files"]
    return {name: listed[name] for name in names}


def choose_points(points: Sequence[TimedPoint],
                  budget: Budget) -> Tuple[Optional[TimedPoint], Optional[TimedPoint]]:
    """The fastest point whose promised drop is within the accuracy budget, and the most accurate within the
    wall-clock budget (None when there is no such point, or no wall-clock budget)."""
    within = [p for p in points if budget.within_accuracy(p.promised_drop)]
    fastest = max(within, key=lambda p: (p.throughput, p.accuracy)) if within else None
    in_time = [p for p in points if budget.within_time(p.throughput_speedup, p.latency_ms)]
    timed = max(in_time, key=lambda p: (p.accuracy, p.throughput)) if in_time else None
    return fastest, timed


def _on_test(config: TimedCalibrateConfig, chosen: Tuple[Optional[TimedPoint], Optional[TimedPoint]], dirs,
             features, reference_runtime: Runtime, name: str) -> Tuple[Optional[TimedTest], Optional[str]]:
    """The chosen points and the reference measured again on the test split; or None and why not."""
    try:
        test = features("test", dirs["full"])
    except DataError as error:
        return None, str(error)
    reference, reference_correct = measure(reference_runtime, test, 0.0, config.batch_size, config.latency_samples,
                                           config.rounds)
    points = {}
    for key, point in zip(("fastest_within_accuracy_budget", "most_accurate_within_time_budget"), chosen):
        if point is None:
            continue
        runtime = open_runtime(dirs[point.width], config.runtime, config.threads, config.precision)
        m, correct = measure(runtime, test, point.speed, config.batch_size, config.latency_samples, config.rounds)
        points[key] = replace(_point(point.width, point.speed, name, m, reference),
                              **_interval(correct, reference_correct, config.bootstrap))
    return TimedTest(reference=reference, points=points), None


def point_correctness(result: TimedResult, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Which examples of ``split`` the reference and every point of ``result`` get right, run again from the exports
    the calibration measured on its runtime and precision (accuracy passes, nothing timed): ``(reference
    [examples], points [examples, points])``, the points in ``result.points``' order. The reference runs on the
    runtime it was timed on, with that runtime's default options (float32 either way)."""
    config = result.config
    if config is None:
        raise DataError("the timed calibration does not record its configuration: calibrate it again")
    full = measured_export(config.output_dir, None)
    tokenizer = load_tokenizer(full)
    examples = split_examples(data.load_splits(config.data), split, config.data.data_dir)
    features = data.encode(examples, tokenizer, config.data.max_seq_len, ExportInfo.read(full).labels, quiet=True)
    gold = np.array([f.label for f in features])
    prepared = bench.batches(features, tokenizer.pad_token_id, config.batch_size)

    def correct(runtime: Runtime, speed: float) -> np.ndarray:
        labels, _ = bench.run_all(bench.runtime_system(runtime, speed), prepared, len(features))
        return labels == gold

    reference = correct(open_runtime(full, result.reference.runtime.split()[0], config.threads), 0.0)
    runtimes: Dict[float, Runtime] = {}
    columns = []
    for point in result.points:
        if point.width not in runtimes:
            runtimes[point.width] = open_runtime(measured_export(config.output_dir, point.width), config.runtime,
                                                 config.threads, config.precision)
        columns.append(correct(runtimes[point.width], point.speed))
    return reference, np.stack(columns, axis=1)


def resplit_timed(result: TimedResult, dev: Tuple[np.ndarray, np.ndarray], test: Tuple[np.ndarray, np.ndarray],
                  repeats: int = 50, seed: int = 0, confidence: Optional[float] = None,
                  rule: str = "per point") -> ResplitResult:
    """How often the timed calibration's promise holds on unseen texts: the ``(reference, points)`` correctness of
    dev and test (:func:`point_correctness`) pooled and re-split at random ``repeats`` times into parts of their
    sizes; each time the fastest point within the budget (dev-measured throughput, as :func:`choose_points`; the
    promised drops bootstrapped on the first part) is chosen on the first part and its drop measured on the
    second. ``held`` is the share of the re-splits that chose a point; a re-split with no point within the budget
    promises nothing (their share: ``no_point``). ``confidence`` replaces the calibration's and ``rule`` its way of
    bounding the drops (one of :data:`~paddle_dynafast.analysis.calibrate.PROMISE_RULES`), to see what another promise
    would have held."""
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    check_rule(rule)
    reference, matrix = (np.concatenate(pair) for pair in zip(dev, test))
    if matrix.shape[1] != len(result.points):
        raise ValueError(f"{matrix.shape[1]} columns of correctness for {len(result.points)} points")
    budget, bootstrap, n_first = result.budget, result.config.bootstrap, len(dev[0])
    if confidence is not None:
        budget = replace(budget, confidence=confidence)
    rng = np.random.default_rng(seed)
    held, drops, flops, speedups, none = [], [], [], [], 0
    for _ in range(repeats):
        order = rng.permutation(len(reference))
        first, second = order[:n_first], order[n_first:]
        accuracy = matrix[first].mean(axis=0)
        if budget.confidence is None:
            promised = reference[first].mean() - accuracy
        else:
            promised = rule_drops(rule, result.points, matrix[first], reference[first], budget.confidence, bootstrap)
        points = [replace(p, promised_drop=float(d), accuracy=float(a))
                  for p, d, a in zip(result.points, promised, accuracy)]
        chosen, _ = choose_points(points, budget)
        if chosen is None:
            none += 1
            continue
        k = points.index(chosen)
        delta = matrix[second, k].mean() - reference[second].mean()
        held.append(budget.held(delta))
        drops.append(-100 * delta)
        flops.append(chosen.flops_speedup)
        speedups.append(chosen.throughput_speedup)
    drops, flops = np.array(drops or [np.nan]), np.array(flops or [np.nan])
    return ResplitResult(repeats=repeats, budget_points=budget.max_accuracy_drop, confidence=budget.confidence,
                         held=float(np.mean(held)) if held else float("nan"), full_model=0.0,
                         test_drop_mean=float(np.mean(drops)), test_drop_q90=float(np.quantile(drops, 0.9)),
                         flops_speedup_median=float(np.median(flops)), flops_speedup_mean=float(np.mean(flops)),
                         throughput_speedup_median=float(np.median(speedups)) if speedups else None,
                         no_point=none / repeats)


def _drop(point: TimedPoint, drop: float) -> str:
    """``0.34 [-0.11, 0.80]``: the drop in points and its interval, when it was measured."""
    if point.delta_low is None:
        return f"{drop:.2f}"
    return f"{drop:.2f} [{-100 * point.delta_high:.2f}, {-100 * point.delta_low:.2f}]"


def markdown(result: TimedResult) -> str:
    ref, budget = result.reference.measured, result.budget
    model = "the full model" if result.teacher_dir is None else f"the teacher ({result.teacher_dir})"
    lines = [f"Reference: {model} (width 1.0, no exit, fp32) on {result.reference.runtime}: dev accuracy "
             f"{100 * ref.accuracy:.2f}, {ref.throughput:.0f} texts/s at batch 32, {ref.latency_ms:.2f} ms at "
             f"batch 1. Measured: {result.runtime}. Budgets: at most {budget.max_accuracy_drop:g} points "
             f"below the reference (promised at confidence {budget.confidence}); time: throughput speed-up >= "
             f"{budget.min_throughput_speedup}, latency <= {budget.max_latency_ms} ms.", "",
             "| choice | width | speed | dev acc | dev drop [95 % CI] | promised dev drop | FLOPs speed-up "
             "| throughput speed-up | latency speed-up | test acc | test drop [95 % CI] | test throughput speed-up "
             "| test latency speed-up | budget held on test |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    test = result.test
    for p, label in ((result.fastest_within_accuracy_budget, "fastest within the accuracy budget"),
                     (result.most_accurate_within_time_budget, "most accurate within the time budget")):
        if p is None:
            lines.append(f"| {label} | none | | | | | | | | | | | | |")
            continue
        t = None if test is None else next(
            (q for q in test.points.values() if q.width == p.width and q.speed == p.speed), None)
        if t is None:
            test_cells = " | | | | "
        else:
            drop = 100 * (test.reference.accuracy - t.accuracy)
            held = "yes" if budget.held(-drop / 100) else "**no**"
            test_cells = (f"{100 * t.accuracy:.2f} | {_drop(t, drop)} | {t.throughput_speedup:.2f}x "
                          f"| {t.latency_speedup:.2f}x | {held}")
        lines.append(f"| {label} | {p.width:g} | {p.speed:g} | {100 * p.accuracy:.2f} "
                     f"| {_drop(p, 100 * (ref.accuracy - p.accuracy))} | {100 * p.promised_drop:.2f} "
                     f"| {p.flops_speedup:.2f}x "
                     f"| {p.throughput_speedup:.2f}x | {p.latency_speedup:.2f}x | {test_cells} |")
    lines += ["", "Every point measured on dev:", "",
              "| width | speed | dev acc | mean exit layer | FLOPs speed-up | throughput | latency |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in result.points:
        lines.append(f"| {p.width:g} | {p.speed:g} | {100 * p.accuracy:.2f} | {p.mean_exit_layer:.2f} "
                     f"| {p.flops_speedup:.2f}x | {p.throughput:.0f}/s ({p.throughput_speedup:.2f}x) "
                     f"| {p.latency_ms:.2f} ms ({p.latency_speedup:.2f}x) |")
    return "# Operating points on measured time\n\n" + "\n".join(lines) + "\n"
