"""The configurations of measuring a model with branches: the evaluation grid, calibration on FLOPs and on
measured time, the :class:`Budget` they choose with, and the bootstrap behind every interval."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..errors import ConfigError
from .base import check_finite, default
from .data import DataConfig
from .runtime import EXPORT_RUNTIMES, ExportConfig, RuntimeName, as_precision, as_runtime


def normalize_speeds(speeds) -> Tuple[float, ...]:
    """Speeds sorted ascending, each in [0, 1], no repeats."""
    speeds = tuple(sorted(float(s) for s in speeds))
    for speed in speeds:
        if not 0 <= speed <= 1:
            raise ConfigError(f"speed {speed} is not in [0, 1]")
    if not speeds or len(set(speeds)) != len(speeds):
        raise ConfigError(f"speeds {list(speeds)} are empty or repeat a value")
    return speeds


def normalize_patience(patience) -> Tuple[int, ...]:
    """PABEE patiences sorted ascending, each a whole number >= 1, no repeats (may be empty)."""
    values = tuple(sorted(patience))
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"patience {value!r} is not a whole number >= 1")
    if len(set(values)) != len(values):
        raise ConfigError(f"patience {list(values)} repeats a value")
    return values


MAX_BOOTSTRAP_SAMPLES = 100_000
"""The most bootstrap resamples: their accuracies are held as ``[samples, systems]`` float64 (100 000 for a grid of
84 points take 67 MB; 20 million exhausted memory), and ten times the default already moves no percentile by a
tenth of a point."""


@dataclass(frozen=True)
class BootstrapConfig:
    """The paired bootstrap behind every accuracy interval and the calibration's confidence
    (:mod:`paddle_dynafast.stats`)."""

    samples: int = 10000
    """Resamples of the examples (100 to :data:`MAX_BOOTSTRAP_SAMPLES`)."""
    seed: int = 0
    """Seeds the resamples; every system compared on one split is scored on the same resamples."""
    level: float = 0.95
    """Coverage of the reported intervals (0.95: from the 2.5th to the 97.5th percentile)."""

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) \
                or not 100 <= self.samples <= MAX_BOOTSTRAP_SAMPLES:
            raise ConfigError(f"bootstrap samples must be a whole number in [100, {MAX_BOOTSTRAP_SAMPLES}], got "
                              f"{self.samples!r}")
        if not 0 < self.level < 1:
            raise ConfigError(f"bootstrap level {self.level} is not in (0, 1)")


@dataclass(frozen=True)
class EvaluateConfig:
    """The accuracy x FLOPs x exit-layer grid of a model with branches, on one split."""

    model_dir: str
    """A stage-3 (distill) directory."""
    output_dir: str
    """Where evaluation.json, evaluation.md and evaluation.png go."""
    data: DataConfig
    """The data folder; max_seq_len should be the one the model was trained with."""
    split: str = "test"
    """Which split to measure: train, dev or test."""
    widths: Optional[Tuple[float, ...]] = None
    """Widths to measure; None: every width the model has branches for."""
    speeds: Tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
    """Speeds to measure (the tables show 0, 0.1, 0.3, 0.5, 0.8 when present)."""
    patience: Tuple[int, ...] = (1, 2, 3, 4)
    """PABEE patiences measured beside the entropy grid (NumPy only) and compared with it at equal FLOPs;
    () skips them. Patience t exits at the first layer whose prediction equals the t layers' before it."""
    batch_size: int = 64
    """Examples per forward pass."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """The intervals of every accuracy difference against the full model."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.split not in ("train", "dev", "test"):
            raise ConfigError(f"split {self.split!r} is not train, dev or test")
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(sorted((float(w) for w in self.widths), reverse=True)))
        object.__setattr__(self, "speeds", normalize_speeds(self.speeds))
        object.__setattr__(self, "patience", normalize_patience(self.patience))
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


def check_confidence(confidence: Optional[float]) -> None:
    if confidence is not None and not 0.5 <= confidence < 1:
        raise ConfigError(f"confidence {confidence} is not in [0.5, 1) (or None for the raw dev drop)")


@dataclass(frozen=True)
class Budget:
    """What an operating point may lose and must save against the full model (width 1.0, speed 0): an accuracy
    budget decided at a stated confidence, a FLOPs budget, and wall-clock budgets. ``calibrate`` chooses with the
    first two, ``calibrate --runtime`` with the accuracy and wall-clock ones; each ``within_*`` method answers for
    one point."""

    max_accuracy_drop: float = 0.5
    """Points of dev accuracy a point may lose against the full model (0.5 = 0.5 %)."""
    confidence: Optional[float] = 0.9
    """A point is within the accuracy budget when its dev drop stays within it with this probability under the
    paired bootstrap (its *promised drop*, the drop's ``confidence``-quantile, is at most ``max_accuracy_drop``);
    None: when its raw dev drop is."""
    min_flops_speedup: Optional[float] = 3.0
    """The FLOPs budget: at least this many times fewer FLOPs than the full model; None: no FLOPs budget."""
    min_throughput_speedup: Optional[float] = None
    """Wall-clock budget: at least this many times the reference's texts per second at batch 32; None: none."""
    max_latency_ms: Optional[float] = None
    """Wall-clock budget: at most this many milliseconds per text at batch 1 (median); None: none."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.max_accuracy_drop < 0:
            raise ConfigError(f"max_accuracy_drop must be >= 0 points, got {self.max_accuracy_drop}")
        check_confidence(self.confidence)
        if self.min_flops_speedup is not None and self.min_flops_speedup < 1:
            raise ConfigError(f"min_flops_speedup must be >= 1, got {self.min_flops_speedup}")
        if self.min_throughput_speedup is not None and self.min_throughput_speedup <= 0:
            raise ConfigError(f"min_throughput_speedup must be > 0, got {self.min_throughput_speedup}")
        if self.max_latency_ms is not None and self.max_latency_ms <= 0:
            raise ConfigError(f"max_latency_ms must be > 0, got {self.max_latency_ms}")

    def within_accuracy(self, promised_drop: float) -> bool:
        """A point whose promised drop (a fraction; the raw dev drop without a ``confidence``) is within
        ``max_accuracy_drop``."""
        return promised_drop <= self.max_accuracy_drop / 100 + 1e-12

    def held(self, delta: float) -> bool:
        """A point measured again (on test) kept the accuracy budget: ``delta``, its accuracy minus the full
        model's on the same examples (a fraction), is at most ``max_accuracy_drop`` points below 0."""
        return -100 * delta <= self.max_accuracy_drop + 1e-9

    def within_flops(self, flops_speedup: float) -> bool:
        """A point with at least ``min_flops_speedup`` times fewer FLOPs; with no FLOPs budget, none is."""
        return self.min_flops_speedup is not None and flops_speedup >= self.min_flops_speedup - 1e-12

    @property
    def has_time_budget(self) -> bool:
        """A throughput or a latency budget is set."""
        return self.min_throughput_speedup is not None or self.max_latency_ms is not None

    def within_time(self, throughput_speedup: float, latency_ms: float) -> bool:
        """A point meeting every wall-clock budget set; with none set, none is."""
        return (self.has_time_budget
                and (self.min_throughput_speedup is None or throughput_speedup >= self.min_throughput_speedup)
                and (self.max_latency_ms is None or latency_ms <= self.max_latency_ms))


@dataclass(frozen=True)
class CalibrateConfig:
    """Choose (width, speed) operating points on dev for an accuracy budget, and the reverse."""

    model_dir: str
    """A stage-3 (distill) directory."""
    output_dir: str
    """Where calibration.json and calibration.md go."""
    data: DataConfig
    """The data folder (dev chooses, test reports)."""
    max_accuracy_drop: float = default(Budget, "max_accuracy_drop")
    """Points of dev accuracy the adaptive model may lose against the teacher (see ``teacher_dir``)."""
    min_flops_speedup: float = default(Budget, "min_flops_speedup")
    """The reverse budget: the best accuracy with at least this many times fewer FLOPs."""
    teacher_dir: Optional[str] = None
    """The model before compression, whose dev accuracy the budget is measured against; None: the teacher the model
    descends from (its stage.json, through the supernet), or the full model (width 1.0, speed 0) when none is
    found."""
    confidence: Optional[float] = default(Budget, "confidence")
    """A point is within the accuracy budget when its dev drop stays within it with this probability under the
    paired bootstrap (:attr:`Budget.confidence`); None: when its raw dev drop is."""
    speeds: Tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(101))
    """Speeds to search."""
    batch_size: int = 64
    """Examples per forward pass."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """The resamples behind ``confidence`` and the reported intervals."""
    resplits: int = 0
    """Also pool dev and test, re-split them at random this many times, and report how often the budget held on
    the part not chosen on (NumPy only: the model is not run again); 0 skips it."""

    def __post_init__(self) -> None:
        check_finite(self)
        self.budget  # building the Budget checks the budgets, each error naming its value
        if isinstance(self.resplits, bool) or not isinstance(self.resplits, int) or self.resplits < 0:
            raise ConfigError(f"resplits must be a whole number >= 0, got {self.resplits!r}")
        object.__setattr__(self, "speeds", normalize_speeds(self.speeds))
        if 0.0 not in self.speeds:
            raise ConfigError("speeds must include 0 (the full model is the reference)")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def budget(self) -> Budget:
        """The accuracy budget and the reverse (FLOPs) budget."""
        return Budget(max_accuracy_drop=self.max_accuracy_drop, confidence=self.confidence,
                      min_flops_speedup=self.min_flops_speedup)


@dataclass(frozen=True)
class TimedCalibrateConfig:
    """Choose (width, speed) on dev for a runtime and precision by measured time (``calibrate --runtime``)."""

    model_dir: str
    """A stage-3 (distill) directory."""
    output_dir: str
    """Where timed.json, timed.md and the measured exports (exports/) go."""
    data: DataConfig
    """The data folder (dev chooses, test reports)."""
    runtime: str = "onnxruntime"
    """The runtime that will serve the model (paddle-inference, onnxruntime)."""
    precision: str = "fp32"
    """fp32; int8 on onnxruntime; bf16 on paddle-inference."""
    threads: int = 2
    """CPU threads of every runtime measured."""
    reference_runtime: str = "auto"
    """Where the teacher (fp32, no exit) is timed as the reference: a runtime name, or auto: the fastest here."""
    teacher_dir: Optional[str] = None
    """The model before compression, the reference of accuracy and time; None: the teacher the model descends from
    (its stage.json), or its own full width when none is found."""
    max_accuracy_drop: float = default(Budget, "max_accuracy_drop")
    """Points of dev accuracy the chosen point may lose against the reference."""
    confidence: Optional[float] = default(Budget, "confidence")
    """Within the accuracy budget with this probability under the paired bootstrap (as calibrate's); None: the raw
    dev drop."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """The resamples behind ``confidence``."""
    min_throughput_speedup: Optional[float] = default(Budget, "min_throughput_speedup")
    """Wall-clock budget: at least this many times the reference's texts per second at batch 32."""
    max_latency_ms: Optional[float] = default(Budget, "max_latency_ms")
    """Wall-clock budget: at most this many milliseconds per text at batch 1 (median)."""
    widths: Optional[Tuple[float, ...]] = None
    """Widths to measure; None: every width the model has branches for."""
    speeds: Tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
    """Speeds to measure at every width (each is a pass over dev)."""
    batch_size: int = 32
    """Texts per batch of the throughput passes."""
    latency_samples: int = 64
    """Dev texts timed one at a time for the latency."""
    rounds: int = 2
    """Timed rounds per point (throughput and latency are their medians), after one untimed pass."""
    int8_float_products: int = default(ExportConfig, "int8_float_products")
    """The int8 exports' most sensitive products kept float32 (:attr:`ExportConfig.int8_float_products`)."""

    def __post_init__(self) -> None:
        check_finite(self)
        self.budget  # building the Budget checks the budgets, each error naming its value
        object.__setattr__(self, "runtime", as_runtime(self.runtime, EXPORT_RUNTIMES))
        object.__setattr__(self, "precision", as_precision(self.precision))
        object.__setattr__(self, "reference_runtime",
                           as_runtime(self.reference_runtime, (RuntimeName.AUTO,) + EXPORT_RUNTIMES))
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(sorted((float(w) for w in self.widths), reverse=True)))
        object.__setattr__(self, "speeds", normalize_speeds(self.speeds))
        for name in ("threads", "batch_size", "latency_samples", "rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def budget(self) -> Budget:
        """The accuracy budget and the wall-clock budgets (no FLOPs budget: time is measured)."""
        return Budget(max_accuracy_drop=self.max_accuracy_drop, confidence=self.confidence, min_flops_speedup=None,
                      min_throughput_speedup=self.min_throughput_speedup, max_latency_ms=self.max_latency_ms)
