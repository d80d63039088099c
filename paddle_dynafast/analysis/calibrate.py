"""Choosing operating points: the speed per width for an accuracy budget, and the reverse, with stated confidence.

On the dev split (:func:`paddle_dynafast.analysis.evaluate.entropy_points`):

* for each width, the largest ``speed`` within ``max_accuracy_drop`` points of
  the reference: the teacher, the model the user had before compression (found
  through the stage directories, or given), else the full model (width 1.0,
  speed 0);
* the single (width, speed) with the fewest mean FLOPs within that budget;
* the reverse: the best dev accuracy whose mean FLOPs are at most
  ``1 / min_flops_speedup`` of the full model's.

"Within the budget" is decided with a stated ``confidence`` C (default 0.9): a
point is within when its drop against the reference stays within the budget
with probability C under the paired bootstrap of the dev examples
(:mod:`paddle_dynafast.stats`), that is when the C-quantile of its bootstrap drop, the
*promised drop*, is at most ``max_accuracy_drop``. This is a one-sided upper
confidence bound on the drop, so a point whose raw dev drop fits the budget by
the luck of which sentences are in dev is not chosen. ``confidence=None``
keeps the raw rule (the raw dev drop within the budget).

Speeds are chosen on dev and measured on test, so the test numbers are not
tuned on themselves: every chosen point is reported with its promised drop, its
dev and test drops and their paired 95 % intervals, McNemar's p on test, and
whether the budget held on test. The budgets are a
:class:`~paddle_dynafast.config.Budget`; the choice, a
:class:`~paddle_dynafast.analysis.results.CalibrationResult`.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .. import atomic, data, outputs, stats
from ..config import BootstrapConfig, BranchConfig, Budget, CalibrateConfig, check_confidence
from ..errors import ConfigError, DataError, MissingFileError
from ..model.dynafast import DynaFastModel
from ..model.flops import BertShape
from ..model.loading import load_classifier
from ..model.over_loader import predict_logits
from ..model.stage_info import StageInfo
from .evaluate import SplitProbabilities, entropy_points, load_split, split_probabilities, with_intervals
from .results import CalibrationResult, GridPoint, OperatingPoint, ResplitResult

logger = logging.getLogger(__name__)

PROBS_FILES = {"dev": "dev_layer_probs.npz", "test": "test_layer_probs.npz"}


def full_model(points: Sequence[GridPoint]) -> GridPoint:
    """The reference point: width 1.0 at speed 0."""
    return points[_full_index(points)]


def _full_index(points: Sequence[GridPoint]) -> int:
    for i, p in enumerate(points):
        if p.width == 1.0 and p.speed == 0.0:
            return i
    raise ConfigError("the grid has no point at width 1.0 and speed 0, the full model to compare with")


def _best(candidates: List[int], key) -> Optional[int]:
    return max(candidates, key=key) if candidates else None


def promised_drops(correct: np.ndarray, reference: np.ndarray, confidence: float,
                   bootstrap: BootstrapConfig = BootstrapConfig(), simultaneous: bool = False) -> np.ndarray:
    """``[points]``: the ``confidence``-quantile of each point's bootstrap drop against ``reference`` (fractions).

    ``correct`` is ``[examples, points]``; a point whose promised drop is at most
    the budget stays within it with probability ``confidence`` under the paired
    bootstrap.

    ``simultaneous``: bounds that hold for every point at once with probability
    ``confidence`` (the max-t band: each point's observed drop plus ``c`` of its
    bootstrap standard deviations, ``c`` the ``confidence``-quantile over
    resamples of the largest standardised deviation of any point), so that the
    fastest of many points within the budget is not favoured by its luck on dev.
    """
    check_confidence(confidence)
    diffs = stats.bootstrap_differences(correct, reference, bootstrap.samples, bootstrap.seed)  # [samples, points]
    if not simultaneous:
        return -np.quantile(diffs, 1 - confidence, axis=0)
    observed = np.asarray(reference, dtype=float).mean() - np.asarray(correct, dtype=float).mean(axis=0)  # [points]
    spread = diffs.std(axis=0)
    scale = np.where(spread > 0, spread, 1.0)  # a point equal to the reference on every text: no spread
    widest = ((-diffs - observed) / scale).max(axis=1)  # [samples]
    return observed + np.quantile(widest, confidence) * spread


def sequence_drops(points: Sequence, correct: np.ndarray, reference: np.ndarray, confidence: float,
                   bootstrap: BootstrapConfig = BootstrapConfig()) -> np.ndarray:
    """``[points]``: promised drops under fixed-sequence testing per width (Learn then Test, Angelopoulos et al.
    2021): each point's bound at confidence ``1 - (1 - confidence) / widths`` (Bonferroni over the widths of
    ``points``, anything with ``width`` and ``speed``), raised to the largest bound of the slower points of its width.
    A point is then within a budget only when every slower point of its width is, and all the points within it are
    together with probability ``confidence``, however many speeds each width has."""
    widths = sorted({p.width for p in points})
    bound = promised_drops(correct, reference, 1 - (1 - confidence) / len(widths), bootstrap)
    drops = bound.copy()
    for width in widths:
        chain = sorted((i for i, p in enumerate(points) if p.width == width), key=lambda i: points[i].speed)
        drops[chain] = np.maximum.accumulate(bound[chain])
    return drops


PROMISE_RULES = ("per point", "fixed sequence", "simultaneous")
"""How promised drops can be bounded: each point alone (:func:`promised_drops`, what ``calibrate`` ships), each
width's speeds in turn (:func:`sequence_drops`), or every point at once (``promised_drops(..., simultaneous=True)``)."""


def check_rule(rule: str) -> str:
    """``rule`` if it is one of :data:`PROMISE_RULES`, else a :class:`ConfigError` naming them."""
    if rule not in PROMISE_RULES:
        raise ConfigError(f"unknown promise rule {rule!r}: one of {', '.join(PROMISE_RULES)}")
    return rule


def rule_drops(rule: str, points: Sequence, correct: np.ndarray, reference: np.ndarray, confidence: float,
               bootstrap: BootstrapConfig = BootstrapConfig()) -> np.ndarray:
    """``[points]``: the promised drops of ``points`` (their ``[examples, points]`` ``correct``) under ``rule``, one
    of :data:`PROMISE_RULES`."""
    if check_rule(rule) == "fixed sequence":
        return sequence_drops(points, correct, reference, confidence, bootstrap)
    return promised_drops(correct, reference, confidence, bootstrap, simultaneous=rule == "simultaneous")


def calibrate(points: Sequence[GridPoint], budget: Budget, correct: Optional[np.ndarray] = None,
              bootstrap: BootstrapConfig = BootstrapConfig(),
              reference_correct: Optional[np.ndarray] = None) -> CalibrationResult:
    """Operating points from a dev grid (accuracies in [0, 1]) for ``budget``.

    Drops are measured against ``reference_correct`` (``[examples]``: the model
    before compression, the teacher) when given, else against the grid's full
    model (width 1.0, speed 0). With ``budget.confidence`` (and ``correct``,
    ``[examples, points]``, one column per point), a point is within the
    accuracy budget when its promised drop (:func:`promised_drops`) is; without,
    when its raw dev drop is.
    """
    ref = _full_index(points)
    reference = points[ref]
    if budget.confidence is None:
        reference_accuracy = reference.accuracy if reference_correct is None else float(np.mean(reference_correct))
        promised = np.array([reference_accuracy - p.accuracy for p in points])
    else:
        if correct is None or correct.shape[1] != len(points):
            raise ValueError(f"confidence {budget.confidence} needs the correctness of every point ([examples, "
                             f"{len(points)}]), got {None if correct is None else correct.shape}")
        against = correct[:, ref] if reference_correct is None else reference_correct
        promised = promised_drops(correct, against, budget.confidence, bootstrap)
    within = [i for i in range(len(points)) if budget.within_accuracy(promised[i])]

    def chosen(i: Optional[int]) -> Optional[OperatingPoint]:
        if i is None:
            return None
        return OperatingPoint(**asdict(points[i]),
                              promised_drop=None if budget.confidence is None else float(promised[i]))

    per_width = {}
    for width in sorted({p.width for p in points}, reverse=True):
        # ties in speed cannot happen; prefer the largest speed that keeps the budget
        per_width[width] = chosen(_best([i for i in within if points[i].width == width],
                                        key=lambda i: points[i].speed))
    fastest = _best(within, key=lambda i: (points[i].flops_speedup, points[i].accuracy))
    cheap = [i for i, p in enumerate(points) if budget.within_flops(p.flops_speedup)]
    most_accurate = _best(cheap, key=lambda i: (points[i].accuracy, points[i].flops_speedup))
    return CalibrationResult(full_model=reference, budget=budget, per_width=per_width,
                             fewest_flops_within_accuracy_budget=chosen(fastest),
                             best_accuracy_within_flops_budget=chosen(most_accurate))


def _points(fraction: float) -> str:
    """A fraction in points with two decimals, never ``-0.00``."""
    return f"{round(100 * fraction, 2) + 0.0:.2f}"


def _drop(point: GridPoint) -> str:
    """``0.34 [-0.11, 0.80]``: the drop (the reference minus this point) and its interval, in points."""
    if point.delta is None:
        return ""
    return f"{_points(-point.delta)} [{_points(-point.delta_high)}, {_points(-point.delta_low)}]"


def markdown(result: CalibrationResult) -> str:
    """The calibration as a Markdown table: promised drop, dev and test drops with their intervals."""
    ref, budget = result.full_model, result.budget
    if result.teacher_dir is not None:
        reference = (f"Reference: the teacher ({result.teacher_dir}), the model before compression: dev accuracy "
                     f"{100 * result.reference_accuracy:.2f}; the full model (width 1.0, speed 0) "
                     f"{100 * ref.accuracy:.2f} ({100 * ref.delta:+.2f} against it)")
    else:
        reference = f"Reference: the full model (width 1.0, speed 0): dev accuracy {100 * ref.accuracy:.2f}"
    rule = (f"a point is within it when its dev drop stays within it with probability {budget.confidence:g} under "
            "the paired bootstrap (the promised drop: that quantile of its bootstrap drop)"
            if budget.confidence is not None else "a point is within it when its raw dev drop is")
    reverse = ("none" if budget.min_flops_speedup is None
               else f"at least {budget.min_flops_speedup:g}x fewer FLOPs")
    lines = [f"{reference}. "
             f"Budget: at most {budget.max_accuracy_drop:g} points below the reference; {rule}; reverse: {reverse}. "
             "Drops are in points, the reference minus the point, on the same examples, with paired-bootstrap 95 % "
             "intervals; McNemar's p on test.", "",
             "| choice | width | speed | promised dev drop | dev acc | dev drop [95 % CI] | dev FLOPs speed-up "
             "| test acc | test drop [95 % CI] | McNemar p (test) | test FLOPs speed-up | budget held on test |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [("fewest FLOPs within the accuracy budget", result.fewest_flops_within_accuracy_budget),
            ("best accuracy within the FLOPs budget", result.best_accuracy_within_flops_budget)]
    rows += [(f"largest speed at width {w}", p) for w, p in result.per_width.items()]
    for name, p in rows:
        if p is None:
            lines.append(f"| {name} | none | | | | | | | | | | |")
            continue
        promised = "" if p.promised_drop is None else _points(p.promised_drop)
        test = result.measured_on_test(p.width, p.speed)
        if test is None:
            test_cells = " | | | | "
        else:
            held = "" if test.delta is None else ("yes" if budget.held(test.delta) else "**no**")
            test_cells = (f"{100 * test.accuracy:.2f} | {_drop(test)} | "
                          f"{'' if test.mcnemar_p is None else f'{test.mcnemar_p:.3g}'} | {test.flops_speedup:.2f}x "
                          f"| {held}")
        lines.append(f"| {name} | {p.width:g} | {p.speed:g} | {promised} | {100 * p.accuracy:.2f} "
                     f"| {_drop(p)} | {p.flops_speedup:.2f}x | {test_cells} |")
    r = result.resplits
    if r is not None:
        lines += ["", f"Dev and test pooled and re-split at random {r.repeats} times: the fewest-FLOPs point within "
                  f"the budget, chosen on the dev-sized part, kept its budget on the other part in "
                  f"{100 * r.held:.0f} % of re-splits ({100 * r.full_model:.0f} % chose the full model itself); "
                  f"measured drop {r.test_drop_mean:.2f} points on average (90th percentile "
                  f"{r.test_drop_q90:.2f}), median FLOPs speed-up {r.flops_speedup_median:.2f}x."]
    return "\n".join(lines) + "\n"


def calibrate_probabilities(dev: SplitProbabilities, test: Optional[SplitProbabilities], shape: BertShape,
                            branch_config: BranchConfig, config: CalibrateConfig) -> CalibrationResult:
    """Choose on ``dev`` and measure on ``test`` (if given) from every classifier's probabilities, NumPy only.

    The result (:func:`calibrate`, every chosen point with its dev interval)
    has ``test``: the chosen points measured on test, each with its interval
    against the reference on test (None without ``test``).
    """
    widths = sorted(dev.probs, reverse=True)
    points, correct = entropy_points(dev, shape, branch_config, widths, config.speeds)
    points = with_intervals(points, correct, dev.reference_correct(), config.bootstrap)
    teacher = None if dev.reference is None else dev.reference_correct()
    result = replace(calibrate(points, config.budget, correct, config.bootstrap, teacher),
                     dev_fingerprint=dev.fingerprint,
                     reference_accuracy=None if teacher is None else float(teacher.mean()))
    if test is None:
        return result
    measured = []
    for width, speed in result.operating_points():
        (p,), c = entropy_points(test, shape, branch_config, [width], [speed])
        measured.append((p, c[:, 0]))
    test_points = with_intervals([p for p, _ in measured], np.stack([c for _, c in measured], axis=1),
                                 test.reference_correct(), config.bootstrap) if measured else []
    return replace(result, test=tuple(test_points), test_fingerprint=test.fingerprint,
                   test_reference_accuracy=None if test.reference is None else float(test.reference_correct().mean()))


def resplit_promises(dev: SplitProbabilities, test: SplitProbabilities, shape: BertShape,
                     branch_config: BranchConfig, config: CalibrateConfig, repeats: int = 50,
                     seed: int = 0) -> ResplitResult:
    """How often the calibrated point's budget holds on unseen examples, without training again: the dev and test
    examples of one model are pooled and re-split at random ``repeats`` times into parts of their sizes; each time
    the point is chosen on the first part (``config``'s budget and confidence) and measured on the second.

    Returns the share of re-splits whose measured drop stayed within the budget (``held``), the share that
    chose the full model itself (``full_model``: a promise kept by giving nothing), and the measured drops (points)
    and FLOPs speed-ups. The measured drop is itself noisy, so even a true drop just under the budget is often
    measured above it: ``held`` is a lower bound for the probability the promise speaks of.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    pooled = SplitProbabilities.pool(dev, test)
    gold, part = pooled.gold, pooled.part

    rng = np.random.default_rng(seed)
    drops, held, speedups, full = [], [], [], 0
    for r in range(repeats):
        order = rng.permutation(len(gold))
        calibration = calibrate_probabilities(part(order[:len(dev.gold)]), part(order[len(dev.gold):]), shape,
                                              branch_config, config)
        chosen = calibration.fewest_flops_within_accuracy_budget
        measured = calibration.measured_on_test(chosen.width, chosen.speed)
        drops.append(-100 * measured.delta)
        held.append(config.budget.held(measured.delta))
        speedups.append(measured.flops_speedup)
        full += chosen.width == 1.0 and chosen.speed == 0.0
    drops, speedups = np.array(drops), np.array(speedups)
    return ResplitResult(repeats=repeats, budget_points=config.max_accuracy_drop, confidence=config.confidence,
                         held=float(np.mean(held)), full_model=full / repeats, test_drop_mean=float(drops.mean()),
                         test_drop_q90=float(np.quantile(drops, 0.9)),
                         flops_speedup_median=float(np.median(speedups)), flops_speedup_mean=float(speedups.mean()))


def run_calibration(config: CalibrateConfig, overwrite: bool = False,
                    trust_pickle: bool = False) -> CalibrationResult:
    """``paddle-dynafast calibrate``: choose on dev, report on test; writes calibration.json and .md, and every
    classifier's probabilities on dev and test (``*_layer_probs.npz``) to re-calibrate from without the model. An
    earlier calibration in the output directory is replaced only with ``overwrite``
    (:mod:`paddle_dynafast.outputs`); ``trust_pickle`` reads pickled weights of an older version."""
    with outputs.claim(config.output_dir, outputs.CALIBRATE, [config.model_dir, config.data.data_dir], overwrite):
        return _calibrate(config, trust_pickle)


def find_teacher(model_dir: str | Path, teacher_dir: Optional[str] = None) -> Optional[Path]:
    """The model before compression that ``model_dir`` descends from (``teacher_dir`` when given, else through the
    stage directories' stage.json); None, and a log line, when there is none to find."""
    if teacher_dir is not None:
        if not Path(teacher_dir).is_dir():
            raise MissingFileError(f"teacher directory {teacher_dir} does not exist")
        return Path(teacher_dir)
    found = StageInfo.read(model_dir).teacher()
    if found is None:
        logger.warning("%s names no teacher that is still there (its stage.json, through the supernet): drops are "
                       "measured against its own full model (width 1.0, speed 0); give the teacher to measure "
                       "against the model before compression", model_dir)
    return found


def teacher_probabilities(teacher_dir: Path, model: DynaFastModel, loader, trust_pickle: bool) -> np.ndarray:
    """The teacher's probabilities ``[examples, num_labels]`` over ``loader`` (encoded for ``model``, whose labels
    the teacher must have in the same order)."""
    teacher = load_classifier(teacher_dir, trust_pickle=trust_pickle).model
    labels = StageInfo.read(teacher_dir).labels_or_numbers(teacher.num_labels)
    if tuple(labels) != tuple(model.labels):
        raise ConfigError(f"the teacher {teacher_dir} has labels {list(labels)}, the model {list(model.labels)}: "
                          "not the model it was compressed from")
    logits = predict_logits(teacher, loader)
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def _calibrate(config: CalibrateConfig, trust_pickle: bool) -> CalibrationResult:
    model = DynaFastModel.load(config.model_dir, trust_pickle=trust_pickle)
    teacher = find_teacher(config.model_dir, config.teacher_dir)
    out = Path(config.output_dir)

    def probabilities(split) -> SplitProbabilities:
        probs = split_probabilities(model, split.loader, split.gold, split.tokens, model.widths, split.fingerprint)
        if teacher is None:
            return probs
        return replace(probs, reference=teacher_probabilities(teacher, model, split.loader, trust_pickle))

    dev = probabilities(load_split(model, config.data, data.CALIBRATION, config.batch_size))
    dev.save(out / PROBS_FILES["dev"])
    try:
        test_split = load_split(model, config.data, "test", config.batch_size)
    except DataError as error:  # no test split: dev only
        test, missing = None, str(error)
    else:
        test, missing = probabilities(test_split), None
        test.save(out / PROBS_FILES["test"])
    shape = BertShape.from_config(model.backbone.config)
    result = calibrate_probabilities(dev, test, shape, model.branches.config, config)
    if missing is not None:
        result = replace(result, test_not_measured=missing)
    elif config.resplits:
        result = replace(result, resplits=resplit_promises(dev, test, shape, model.branches.config, config,
                                                           config.resplits))
    result = replace(result, config=config, teacher_dir=None if teacher is None else str(teacher))
    atomic.write_json(out / "calibration.json", result.to_json())
    atomic.write_text(out / "calibration.md", "# Calibrated operating points\n\n" + markdown(result))
    return result
