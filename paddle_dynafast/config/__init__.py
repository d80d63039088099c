"""Typed, frozen configurations for every command and stage, and every default, once.

Each field has a one-line doc; ``__post_init__`` rejects bad values with a
:class:`~paddle_dynafast.errors.ConfigError` (a ``ValueError``) that names the
value. The command line and :class:`PipelineConfig` take their defaults from
these classes (:func:`default`). Configs are written next to the artifacts they
produced (``stage.json``) and read back with :func:`from_dict`.

One module per side: :mod:`.data`, :mod:`.train` (the stages), :mod:`.analysis`
(evaluate, calibrate, and the :class:`Budget` calibrate chooses with),
:mod:`.runtime` (the commands that make or run an export, and the runtime names
and precisions), :mod:`.pipeline`; :mod:`.base` holds what they share. Every
name is importable from here.
"""
from .analysis import (BootstrapConfig, Budget, CalibrateConfig, EvaluateConfig, TimedCalibrateConfig,
                       check_confidence, normalize_patience, normalize_speeds)
from .base import (MAX_SEED, all_cores, check_count, check_finite, check_seed, check_threads, default, from_dict,
                   to_dict, usable_cores)
from .data import DataConfig, normalize_labels
from .pipeline import PipelineConfig
from .runtime import (EXPORT_RUNTIMES, INT8_ACTIVATIONS, MEASURE, BenchConfig, BenchSystem, ExportConfig, Precision,
                      PredictConfig, RuntimeConfig, RuntimeName, ServeConfig, as_precision, as_runtime)
from .train import (BRANCH_KINDS, AugmentConfig, BranchConfig, FinetuneConfig, ModelSize, SelfDistillConfig,
                    SupernetConfig, TrainConfig, normalize_widths)

__all__ = ["AugmentConfig", "BenchConfig", "BenchSystem", "BootstrapConfig", "BRANCH_KINDS", "BranchConfig", "Budget",
           "CalibrateConfig", "DataConfig", "EXPORT_RUNTIMES", "EvaluateConfig", "ExportConfig", "FinetuneConfig",
           "INT8_ACTIVATIONS", "MAX_SEED", "MEASURE", "ModelSize", "PipelineConfig", "Precision", "PredictConfig",
           "RuntimeConfig", "RuntimeName", "SelfDistillConfig", "ServeConfig", "SupernetConfig",
           "TimedCalibrateConfig", "TrainConfig", "all_cores", "as_precision", "as_runtime", "check_confidence",
           "check_count", "check_finite", "check_seed", "check_threads", "default", "from_dict", "normalize_labels",
           "normalize_patience", "normalize_speeds", "normalize_widths", "to_dict", "usable_cores"]
