"""The promise an export carries: what the calibration that chose its operating point measured and guaranteed.

``export --calibration DIR`` (and ``pipeline``) write it into ``export.json``;
:class:`~paddle_dynafast.runtime.export_info.ExportInfo` reads it back, and the
server's ``/health`` shows it. Drops are in accuracy points, the reference
minus the export (positive: the export is worse); the reference is the model
before compression (the teacher) when the calibration found one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class SplitDrop:
    """The export against the reference on one split."""

    accuracy: float
    """The export's accuracy (a fraction)."""
    reference_accuracy: float
    """The reference's accuracy on the same examples."""
    drop: float
    """``reference_accuracy - accuracy`` in points."""
    drop_low: Optional[float] = None
    """Lower end of the drop's paired-bootstrap 95 % interval (points)."""
    drop_high: Optional[float] = None
    """Upper end of that interval."""


@dataclass(frozen=True)
class Promise:
    """What a calibration promised about one (width, speed) of a model on one runtime and precision."""

    width: float
    speed: float
    """The exit threshold the promise is about (the default speed of ``predict`` and ``serve`` on this export)."""
    measured_on: str
    """What was measured: ``onnxruntime int8`` (the program itself, on measured time), or ``dygraph fp32`` (the
    model in Paddle's dygraph, on analytic FLOPs)."""
    reference: str
    """``teacher`` (the model before compression) or ``full model`` (the model's own width 1.0 at speed 0)."""
    max_accuracy_drop: float
    """The accuracy budget, in points below the reference."""
    confidence: Optional[float]
    """With which probability the dev drop stays within the budget under the paired bootstrap; None: the raw drop."""
    within_budget: bool
    """Whether this point was chosen within the budget (False: no point was, and this one was exported anyway)."""
    dev: SplitDrop
    promised_drop: Optional[float] = None
    """The ``confidence``-quantile of the bootstrap dev drop, in points: at most ``max_accuracy_drop`` when
    ``within_budget``."""
    test: Optional[SplitDrop] = None
    """The same point measured on test (None when there was no test split)."""
    flops_speedup: Optional[float] = None
    """Mean FLOPs of the full model over this point's, on dev."""
    throughput_speedup: Optional[float] = None
    """Texts per second at batch 32 over the reference's on ``reference_runtime`` (dev; None on FLOPs)."""
    latency_speedup: Optional[float] = None
    """The reference's median latency at batch 1 over this point's (dev; None on FLOPs)."""
    reference_runtime: Optional[str] = None
    """Where the reference was timed (None on FLOPs)."""
    reference_dir: Optional[str] = None
    """The teacher's directory, when the reference is the teacher."""
    calibration: str = ""
    """The calibration file the promise comes from."""
    program_files: Dict[str, str] = field(default_factory=dict)
    """The sha256 of the files the measured runtime ran: the export's files are these (empty on FLOPs, where the
    dygraph model was measured, not a program)."""

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Dict[str, Any]) -> "Promise":
        test = raw.get("test")
        return cls(**{**raw, "dev": SplitDrop(**raw["dev"]), "test": None if test is None else SplitDrop(**test),
                      "program_files": dict(raw.get("program_files", {}))})

    def summary(self) -> str:
        """One line: the point, the promised drop and what was measured."""
        confidence = "raw dev drop" if self.confidence is None else f"confidence {self.confidence:g}"
        promised = "" if self.promised_drop is None else f", promised drop {self.promised_drop:.2f}"
        held = "" if self.within_budget else " (NOT within the budget)"
        return (f"width {self.width:g}, speed {self.speed:g} on {self.measured_on}: at most "
                f"{self.max_accuracy_drop:g} points below the {self.reference} ({confidence}{promised}){held}")
