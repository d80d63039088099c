"""Typed, frozen configurations for every command and stage, and every default, once.

Each field has a one-line doc; ``__post_init__`` rejects bad values with a
:class:`~paddle_dynafast.errors.ConfigError` (a ``ValueError``) that names the
value. The command line and :class:`PipelineConfig` take their defaults from
these classes (:func:`default`). Configs are written next to the artifacts they
produced (``stage.json``) and read back with :func:`from_dict`.

One module per side: :mod:`.data`, :mod:`.train` (the stages), :mod:`.analysis`
(evaluate, calibrate, and the :class:`Budget` calibrate chooses with),
:mod:`.runtime` (the commands that run an export), :mod:`.pipeline`; :mod:`.base`
holds what they share. Every name is importable from here.
"""
from .analysis import (BootstrapConfig, Budget, CalibrateConfig, EvaluateConfig, TimedCalibrateConfig,
                       check_confidence, normalize_patience, normalize_speeds)
from .base import MAX_SEED, check_finite, check_seed, default, from_dict, to_dict
from .data import DataConfig, normalize_labels
from .pipeline import PipelineConfig
from .runtime import ServeConfig
from .train import (BRANCH_KINDS, AugmentConfig, BranchConfig, FinetuneConfig, ModelSize, SelfDistillConfig,
                    SupernetConfig, TrainConfig, normalize_widths)

__all__ = ["AugmentConfig", "BootstrapConfig", "BRANCH_KINDS", "BranchConfig", "Budget", "CalibrateConfig",
           "DataConfig", "EvaluateConfig", "FinetuneConfig", "MAX_SEED", "ModelSize", "PipelineConfig",
           "SelfDistillConfig", "ServeConfig", "SupernetConfig", "TimedCalibrateConfig", "TrainConfig",
           "check_confidence", "check_finite", "check_seed", "default", "from_dict", "normalize_labels",
           "normalize_patience", "normalize_speeds", "normalize_widths", "to_dict"]
