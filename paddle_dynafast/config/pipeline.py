"""All stages of one run: :class:`PipelineConfig`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..errors import ConfigError
from .analysis import Budget, CalibrateConfig, TimedCalibrateConfig, normalize_speeds
from .base import check_finite, default
from .data import DataConfig
from .runtime import EXPORT_RUNTIMES, Precision, RuntimeName, as_runtime
from .train import (BranchConfig, FinetuneConfig, ModelSize, SelfDistillConfig, SupernetConfig, TrainConfig,
                    normalize_widths)


@dataclass(frozen=True)
class PipelineConfig:
    """All stages of one run (``paddle-dynafast pipeline``); every default is the one of the stage it feeds."""

    output_dir: str
    """The run directory; every stage writes a subdirectory."""
    data: DataConfig
    """Examples and their cutting, for every stage (its split_seed too)."""
    model_dir: Optional[str] = None
    """Pretrained model (PaddleNLP or Hugging Face directory); None with random_init: a character vocabulary."""
    random_init: bool = default(FinetuneConfig, "random_init")
    """Start the teacher from random weights."""
    size: ModelSize = field(default_factory=ModelSize)
    """Teacher size when there is no model_dir."""
    finetune: TrainConfig = field(default_factory=lambda: default(FinetuneConfig, "train"))
    """Optimisation of stage 1."""
    supernet: TrainConfig = field(default_factory=lambda: default(SupernetConfig, "train"))
    """Optimisation of stage 2."""
    distill: TrainConfig = field(default_factory=lambda: default(SelfDistillConfig, "train"))
    """Optimisation of stage 3."""
    widths: Tuple[float, ...] = default(SupernetConfig, "widths")
    """Supernet widths."""
    lambda_distill: float = default(SupernetConfig, "lambda_distill")
    """Supernet hidden-state MSE weight."""
    lambda_logit: float = default(SupernetConfig, "lambda_logit")
    """Supernet soft cross-entropy weight."""
    branch: BranchConfig = field(default_factory=BranchConfig)
    """Size of every branch."""
    shared_branches: bool = default(SelfDistillConfig, "shared_branches")
    """One set of branches for all widths."""
    importance_examples: int = default(SupernetConfig, "importance_examples")
    """Training examples held out to score heads and neurons."""
    max_accuracy_drop: float = default(CalibrateConfig, "max_accuracy_drop")
    """Calibration budget in dev accuracy points."""
    min_flops_speedup: float = default(CalibrateConfig, "min_flops_speedup")
    """Reverse calibration budget."""
    confidence: Optional[float] = default(CalibrateConfig, "confidence")
    """Probability with which the calibrated point's dev drop stays within the budget (None: the raw drop)."""
    int8: bool = False
    """Serve the adaptive model in int8 (model.int8.onnx on ONNX Runtime): it is calibrated on measured time as that
    program, and timed that way in the summary; the teacher stays float32, its best runtime here."""
    runtime: Optional[str] = None
    """Calibrate on time measured on this runtime (paddle-inference, onnxruntime) in the served precision; None:
    onnxruntime with ``int8``, else on analytic FLOPs in dygraph float32."""
    timed_speeds: Tuple[float, ...] = default(TimedCalibrateConfig, "speeds")
    """The speeds measured at every width when calibrating on measured time."""
    timed_rounds: int = default(TimedCalibrateConfig, "rounds")
    """Timed rounds per point when calibrating on measured time."""
    int8_float_products: int = default(TimedCalibrateConfig, "int8_float_products")
    """With ``int8``: the most sensitive products kept float32 (:attr:`ExportConfig.int8_float_products`)."""
    bench_samples: int = 100
    """Texts timed at batch 1 for the summary's latency (0 skips the timing)."""

    def __post_init__(self) -> None:
        check_finite(self)
        object.__setattr__(self, "widths", normalize_widths(self.widths))
        self.budget  # building the Budget checks the budgets, each error naming its value
        if self.runtime is not None:
            object.__setattr__(self, "runtime", as_runtime(self.runtime, EXPORT_RUNTIMES))
        object.__setattr__(self, "timed_speeds", normalize_speeds(self.timed_speeds))
        if self.timed_rounds < 1:
            raise ConfigError(f"timed_rounds must be >= 1, got {self.timed_rounds}")
        if self.bench_samples < 0:
            raise ConfigError(f"bench_samples must be >= 0, got {self.bench_samples}")

    @property
    def served(self) -> Optional[Tuple[str, str]]:
        """``(runtime, precision)`` the calibration measures on, or None to calibrate on FLOPs."""
        if self.runtime is None and not self.int8:
            return None
        return str(self.runtime or RuntimeName.ONNXRUNTIME), str(Precision.INT8 if self.int8 else Precision.FP32)

    @property
    def budget(self) -> Budget:
        """The calibration's accuracy and FLOPs budgets."""
        return Budget(max_accuracy_drop=self.max_accuracy_drop, confidence=self.confidence,
                      min_flops_speedup=self.min_flops_speedup)
