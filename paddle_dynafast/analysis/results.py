"""What ``evaluate`` and ``calibrate`` return, typed, and the JSON files they write.

Each result is a frozen dataclass; ``to_json`` gives the content of its file
and ``from_json`` reads that content back (``from_json(r.to_json()) == r``):

* :class:`EvaluationResult` (``evaluation.json``): the grid of
  :class:`GridPoint` and PABEE's :class:`PatiencePoint`;
* :class:`CalibrationResult` (``calibration.json``): the
  :class:`OperatingPoint` chosen on dev for a
  :class:`~paddle_dynafast.config.Budget`, the chosen points measured on test,
  and the :class:`ResplitResult`;
* :class:`TimedResult` (``timed.json``): every :class:`TimedPoint` measured on
  a runtime against a :class:`TimedReference`, the two chosen, and the
  :class:`TimedTest` of them.

Accuracies and drops are fractions (0.88, 0.005); budgets are in points
(``max_accuracy_drop`` 0.5 = 0.5 %), as in the files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..config import Budget, CalibrateConfig, EvaluateConfig, TimedCalibrateConfig, from_dict, to_dict

NOT_MEASURED = "not measured: "
"""How a file says that the test split was not measured, before the reason."""


def _not_measured(value: Any) -> str:
    """The reason in a file's ``"test": "not measured: <reason>"``."""
    return value[len(NOT_MEASURED):] if value.startswith(NOT_MEASURED) else value


@dataclass(frozen=True)
class GridPoint:
    """One (width, speed) of the entropy-exit grid on one split."""

    width: float
    speed: float
    accuracy: float
    mean_flops: float
    flops_speedup: float
    """Mean FLOPs of the full model (width 1.0, all layers, no branches) over this point's mean FLOPs."""
    mean_exit_layer: float
    delta: Optional[float] = None
    """``accuracy`` minus the reference's on the same examples: the full model's (width 1.0, speed 0) in a grid, the
    teacher's in a calibration that has one; None if not measured."""
    delta_low: Optional[float] = None
    """Lower end of the paired-bootstrap interval of ``delta`` (``BootstrapConfig.level``, 95 %)."""
    delta_high: Optional[float] = None
    """Upper end of that interval."""
    mcnemar_p: Optional[float] = None
    """McNemar's two-sided p-value against the full model (exact below 25 discordant examples, else chi-square)."""


@dataclass(frozen=True)
class PatiencePoint:
    """A PABEE patience point, with the entropy point it is compared with at equal (or lower) FLOPs."""

    width: float
    patience: int
    accuracy: float
    mean_flops: float
    flops_speedup: float
    mean_exit_layer: float
    delta: Optional[float] = None
    """``accuracy`` minus the full model's, as :attr:`GridPoint.delta`."""
    delta_low: Optional[float] = None
    delta_high: Optional[float] = None
    mcnemar_p: Optional[float] = None
    entropy_speed: Optional[float] = None
    """Speed of the entropy point at this width with the smallest FLOPs speed-up at least this one's; None if none."""
    entropy_accuracy: Optional[float] = None
    entropy_flops_speedup: Optional[float] = None
    vs_entropy: Optional[float] = None
    """``accuracy`` minus that entropy point's, on the same examples."""
    vs_entropy_low: Optional[float] = None
    vs_entropy_high: Optional[float] = None
    vs_entropy_p: Optional[float] = None
    """McNemar's p-value of patience against that entropy point."""


@dataclass(frozen=True)
class EvaluationResult:
    """The grid of ``evaluate`` on one split (``evaluation.json``)."""

    points: Tuple[GridPoint, ...]
    """Every (width, speed) with entropy exits: widths descending, speeds ascending within each."""
    patience_points: Tuple[PatiencePoint, ...] = ()
    """PABEE's points, each against the entropy point at least as cheap; () when none were measured."""
    patience_vs_entropy: Dict[float, Dict[str, Any]] = field(default_factory=dict)
    """Width -> the entropy curve against the patience points at equal FLOPs
    (:func:`~paddle_dynafast.analysis.criteria.compare_at_equal_flops`)."""
    examples: Optional[int] = None
    """Examples in the split."""
    fingerprint: Optional[str] = None
    """Which examples (:func:`paddle_dynafast.data.fingerprint`)."""
    config: Optional[EvaluateConfig] = None
    """The configuration that produced the grid."""

    def to_json(self) -> Dict[str, Any]:
        out = {"config": None if self.config is None else to_dict(self.config), "examples": self.examples,
               "fingerprint": self.fingerprint, "points": [asdict(p) for p in self.points]}
        if self.patience_points:
            out["patience_points"] = [asdict(p) for p in self.patience_points]
            out["patience_vs_entropy"] = {str(w): c for w, c in self.patience_vs_entropy.items()}
        return out

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "EvaluationResult":
        config = data.get("config")
        return cls(points=tuple(GridPoint(**p) for p in data["points"]),
                   patience_points=tuple(PatiencePoint(**p) for p in data.get("patience_points", [])),
                   patience_vs_entropy={float(w): c for w, c in data.get("patience_vs_entropy", {}).items()},
                   examples=data.get("examples"), fingerprint=data.get("fingerprint"),
                   config=None if config is None else from_dict(EvaluateConfig, config))


@dataclass(frozen=True)
class OperatingPoint(GridPoint):
    """A grid point chosen on dev, with the drop it promises."""

    promised_drop: Optional[float] = None
    """The ``confidence``-quantile of its bootstrap drop against the reference (the teacher, else the full model; a
    fraction); None when the budget has no confidence (the raw dev drop decides)."""


@dataclass(frozen=True)
class ResplitResult:
    """How often the calibrated point's budget held on unseen examples, over random re-splits of dev and test
    pooled (:func:`~paddle_dynafast.analysis.calibrate.resplit_promises`)."""

    repeats: int
    """Re-splits made."""
    budget_points: float
    """The accuracy budget (``max_accuracy_drop``, points)."""
    confidence: Optional[float]
    """The budget's confidence."""
    held: float
    """Share of re-splits whose point, chosen on the dev-sized part, kept the budget on the other part."""
    full_model: float
    """Share of re-splits that chose the full model itself (a promise kept by giving nothing)."""
    test_drop_mean: float
    """Mean measured drop on the other part (points)."""
    test_drop_q90: float
    """Its 90th percentile (points)."""
    flops_speedup_median: float
    flops_speedup_mean: float
    throughput_speedup_median: Optional[float] = None
    """On measured time (:func:`~paddle_dynafast.analysis.timed.resplit_timed`): the chosen points' throughput
    speed-ups as measured on dev, median; None on FLOPs."""
    no_point: float = 0.0
    """Share of re-splits where no point was within the budget (nothing promised); on measured time ``held`` is a
    share of the others."""

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "ResplitResult":
        return cls(**data)


@dataclass(frozen=True)
class CalibrationResult:
    """The operating points ``calibrate`` chose on dev for a budget, and those points measured on test
    (``calibration.json``)."""

    full_model: GridPoint
    """The reference on dev: width 1.0 at speed 0."""
    budget: Budget
    """The accuracy budget and the reverse (FLOPs) budget chosen for."""
    per_width: Dict[float, Optional[OperatingPoint]]
    """Width (descending) -> the largest speed within the accuracy budget; None when no speed is."""
    fewest_flops_within_accuracy_budget: Optional[OperatingPoint]
    """The point with the fewest mean FLOPs within the accuracy budget (ties: the more accurate)."""
    best_accuracy_within_flops_budget: Optional[OperatingPoint]
    """The most accurate point within the FLOPs budget (ties: the fewer FLOPs); None when no point is."""
    dev_fingerprint: Optional[str] = None
    """Which dev examples chose (:func:`paddle_dynafast.data.fingerprint`)."""
    test: Optional[Tuple[GridPoint, ...]] = None
    """Every chosen point (:meth:`operating_points`) measured on test, against the full model on test; None when
    test was not measured (``test_not_measured`` says why)."""
    test_not_measured: str = "no test split"
    """Why ``test`` is None."""
    test_fingerprint: Optional[str] = None
    """Which test examples measured, when they were."""
    resplits: Optional[ResplitResult] = None
    """How often the budget held on random re-splits of dev and test; None when not asked for."""
    config: Optional[CalibrateConfig] = None
    """The configuration of ``calibrate`` that produced it."""
    teacher_dir: Optional[str] = None
    """The model before compression that every drop is measured against; None: the full model is the reference."""
    reference_accuracy: Optional[float] = None
    """The teacher's dev accuracy (None without a teacher: ``full_model`` is the reference)."""
    test_reference_accuracy: Optional[float] = None
    """The teacher's test accuracy, when test was measured."""

    @property
    def reference(self) -> str:
        """What the drops are measured against: ``teacher`` or ``full model``."""
        return "full model" if self.teacher_dir is None else "teacher"

    def operating_points(self) -> List[Tuple[float, float]]:
        """The distinct chosen (width, speed) pairs: the two budgets' points, then each width's."""
        chosen = [self.fewest_flops_within_accuracy_budget, self.best_accuracy_within_flops_budget,
                  *self.per_width.values()]
        out: List[Tuple[float, float]] = []
        for point in chosen:
            if point is not None and (point.width, point.speed) not in out:
                out.append((point.width, point.speed))
        return out

    def measured_on_test(self, width: float, speed: float) -> Optional[GridPoint]:
        """The test measurement of the chosen point at (``width``, ``speed``); None if there is none."""
        return next((p for p in self.test or () if (p.width, p.speed) == (width, speed)), None)

    def to_json(self) -> Dict[str, Any]:
        def chosen(point: Optional[OperatingPoint]) -> Optional[Dict[str, Any]]:
            return None if point is None else asdict(point)

        out = {"full_model": asdict(self.full_model), "max_accuracy_drop_points": self.budget.max_accuracy_drop,
               "min_flops_speedup": self.budget.min_flops_speedup, "confidence": self.budget.confidence,
               "per_width": {str(w): chosen(p) for w, p in self.per_width.items()},
               "fewest_flops_within_accuracy_budget": chosen(self.fewest_flops_within_accuracy_budget),
               "best_accuracy_within_flops_budget": chosen(self.best_accuracy_within_flops_budget),
               "dev_fingerprint": self.dev_fingerprint,
               "test": (NOT_MEASURED + self.test_not_measured if self.test is None
                        else [asdict(p) for p in self.test])}
        if self.test_fingerprint is not None:
            out["test_fingerprint"] = self.test_fingerprint
        if self.resplits is not None:
            out["resplits"] = self.resplits.to_json()
        if self.teacher_dir is not None:
            out["teacher"] = {"directory": self.teacher_dir, "dev_accuracy": self.reference_accuracy,
                              "test_accuracy": self.test_reference_accuracy}
        out["config"] = None if self.config is None else to_dict(self.config)
        return out

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "CalibrationResult":
        def chosen(point: Optional[Dict[str, Any]]) -> Optional[OperatingPoint]:
            return None if point is None else OperatingPoint(**point)

        test, resplits, config, teacher = data["test"], data.get("resplits"), data.get("config"), data.get("teacher")
        return cls(full_model=GridPoint(**data["full_model"]),
                   # a file written before calibrate had a confidence has none: it chose by the raw dev drop
                   budget=Budget(max_accuracy_drop=data["max_accuracy_drop_points"],
                                 confidence=data.get("confidence"), min_flops_speedup=data["min_flops_speedup"]),
                   per_width={float(w): chosen(p) for w, p in data["per_width"].items()},
                   fewest_flops_within_accuracy_budget=chosen(data["fewest_flops_within_accuracy_budget"]),
                   best_accuracy_within_flops_budget=chosen(data["best_accuracy_within_flops_budget"]),
                   dev_fingerprint=data.get("dev_fingerprint"),
                   test=None if isinstance(test, str) else tuple(GridPoint(**p) for p in test),
                   test_not_measured=_not_measured(test) if isinstance(test, str) else cls.test_not_measured,
                   test_fingerprint=data.get("test_fingerprint"),
                   resplits=None if resplits is None else ResplitResult.from_json(resplits),
                   config=None if config is None else from_dict(CalibrateConfig, config),
                   teacher_dir=None if teacher is None else teacher["directory"],
                   reference_accuracy=None if teacher is None else teacher["dev_accuracy"],
                   test_reference_accuracy=None if teacher is None else teacher["test_accuracy"])


@dataclass(frozen=True)
class TimedPoint:
    """One (width, speed) measured on a runtime in a precision, on one split."""

    width: float
    speed: float
    runtime: str
    """The runtime and precision, e.g. ``onnxruntime int8``."""
    accuracy: float
    mean_exit_layer: float
    mean_flops: float
    throughput: float
    """Texts per second at batch 32 (median of the passes)."""
    latency_ms: float
    """Median milliseconds of one text at batch 1."""
    promised_drop: float = 0.0
    """The drop (a fraction) promised at the configured confidence, or the raw drop without one."""
    flops_speedup: float = 1.0
    throughput_speedup: float = 1.0
    latency_speedup: float = 1.0
    delta: Optional[float] = None
    """``accuracy`` minus the reference's on the same examples; None in a file written before it was recorded."""
    delta_low: Optional[float] = None
    """Lower end of the paired-bootstrap interval of ``delta``."""
    delta_high: Optional[float] = None

    def to_json(self) -> Dict[str, Any]:
        """Its fields; the interval only when it was measured."""
        return {k: v for k, v in asdict(self).items() if not (k.startswith("delta") and v is None)}


@dataclass(frozen=True)
class Measurement:
    """One system at one speed on one labelled split: accuracy, exits, FLOPs and time."""

    accuracy: float
    mean_exit_layer: float
    mean_flops: float
    throughput: float
    """Texts per second at the configured batch size (median of the passes)."""
    latency_ms: float
    """Median milliseconds of one text at batch 1."""


@dataclass(frozen=True)
class Timing:
    """The time of one pass of measurements: throughput and latency."""

    throughput: float
    latency_ms: float


@dataclass(frozen=True)
class TimedReference:
    """The full model (width 1.0, no exit, fp32) on the reference runtime, on dev, timed before and after the
    points."""

    runtime: str
    """The reference runtime with its options, e.g. ``paddle-inference fp32 onednn=True``."""
    measured: Measurement
    """Accuracy, exits and FLOPs of the first pass; throughput and latency the mean of both."""
    first: Timing
    last: Timing

    def to_json(self) -> Dict[str, Any]:
        return {"runtime": self.runtime, **asdict(self.measured), "first": asdict(self.first),
                "last": asdict(self.last)}

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "TimedReference":
        rest = {k: v for k, v in data.items() if k not in ("runtime", "first", "last")}
        return cls(runtime=data["runtime"], measured=Measurement(**rest), first=Timing(**data["first"]),
                   last=Timing(**data["last"]))


@dataclass(frozen=True)
class TimedTest:
    """The chosen points and the reference measured again on test."""

    reference: Measurement
    points: Dict[str, TimedPoint]
    """By choice (``fastest_within_accuracy_budget``, then ``most_accurate_within_time_budget``), each against the
    reference on test."""

    def to_json(self) -> Dict[str, Any]:
        return {"reference": asdict(self.reference),
                "points": [{"choice": choice, **p.to_json()} for choice, p in self.points.items()]}

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "TimedTest":
        points = {p["choice"]: TimedPoint(**{k: v for k, v in p.items() if k != "choice"}) for p in data["points"]}
        return cls(reference=Measurement(**data["reference"]), points=points)


@dataclass(frozen=True)
class TimedResult:
    """The operating points ``calibrate --runtime`` chose by measured time (``timed.json``)."""

    reference: TimedReference
    """The full model on the reference runtime."""
    runtime: str
    """The runtime and precision measured, e.g. ``onnxruntime int8``."""
    points: Tuple[TimedPoint, ...]
    """Every (width, speed) measured on dev."""
    budget: Budget
    """The accuracy budget and the wall-clock budgets chosen for."""
    fastest_within_accuracy_budget: Optional[TimedPoint]
    """The highest throughput whose promised drop is within the accuracy budget (ties: the more accurate)."""
    most_accurate_within_time_budget: Optional[TimedPoint]
    """The best accuracy within the wall-clock budgets (ties: the faster); None when none is set or none meets."""
    test: Optional[TimedTest] = None
    """The two chosen points and the reference on test; None when test was not measured."""
    test_not_measured: str = "no test split"
    """Why ``test`` is None."""
    config: Optional[TimedCalibrateConfig] = None
    """The configuration that produced it."""
    teacher_dir: Optional[str] = None
    """The model before compression measured as the reference; None: the model's own full width."""
    program_files: Dict[float, Dict[str, str]] = field(default_factory=dict)
    """Width -> the sha256 of every file the measured runtime ran (``model.int8.onnx``, ...), from the export's
    manifest: an export of the same width ships what was measured when its files have these hashes."""

    def to_json(self) -> Dict[str, Any]:
        def chosen(point: Optional[TimedPoint]) -> Optional[Dict[str, Any]]:
            return None if point is None else point.to_json()

        return {"reference": self.reference.to_json(), "runtime": self.runtime,
                "points": [p.to_json() for p in self.points],
                "max_accuracy_drop_points": self.budget.max_accuracy_drop, "confidence": self.budget.confidence,
                "min_throughput_speedup": self.budget.min_throughput_speedup,
                "max_latency_ms": self.budget.max_latency_ms,
                "fastest_within_accuracy_budget": chosen(self.fastest_within_accuracy_budget),
                "most_accurate_within_time_budget": chosen(self.most_accurate_within_time_budget),
                "test": NOT_MEASURED + self.test_not_measured if self.test is None else self.test.to_json(),
                "config": None if self.config is None else to_dict(self.config), "teacher_dir": self.teacher_dir,
                "program_files": {str(w): files for w, files in self.program_files.items()}, "complete": True}

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "TimedResult":
        if not data.get("complete"):
            raise ValueError("the timed calibration is incomplete (interrupted before it wrote its result)")

        def chosen(point: Optional[Dict[str, Any]]) -> Optional[TimedPoint]:
            return None if point is None else TimedPoint(**point)

        test, config = data["test"], data.get("config")
        return cls(reference=TimedReference.from_json(data["reference"]), runtime=data["runtime"],
                   points=tuple(TimedPoint(**p) for p in data["points"]),
                   budget=Budget(max_accuracy_drop=data["max_accuracy_drop_points"], confidence=data["confidence"],
                                 min_flops_speedup=None, min_throughput_speedup=data["min_throughput_speedup"],
                                 max_latency_ms=data["max_latency_ms"]),
                   fastest_within_accuracy_budget=chosen(data["fastest_within_accuracy_budget"]),
                   most_accurate_within_time_budget=chosen(data["most_accurate_within_time_budget"]),
                   test=None if isinstance(test, str) else TimedTest.from_json(test),
                   test_not_measured=_not_measured(test) if isinstance(test, str) else cls.test_not_measured,
                   config=None if config is None else from_dict(TimedCalibrateConfig, config),
                   teacher_dir=data.get("teacher_dir"),
                   program_files={float(w): files for w, files in data.get("program_files", {}).items()})
