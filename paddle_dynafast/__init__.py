"""paddle_dynafast: width- and depth-adaptive BERT classifiers on PaddlePaddle.

Width as in DynaBERT (arXiv 2004.04037), on PaddleSlim's OFA; depth as in
FastBERT (arXiv 2004.02178). Importing the package changes nothing: no
patching, no logging set-up, no files; submodules load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    # configurations
    "DataConfig": "config", "TrainConfig": "config", "ModelSize": "config", "FinetuneConfig": "config",
    "SupernetConfig": "config", "BranchConfig": "config", "SelfDistillConfig": "config",
    "EvaluateConfig": "config", "CalibrateConfig": "config", "PipelineConfig": "config", "ServeConfig": "config",
    "AugmentConfig": "config", "BootstrapConfig": "config", "ExportConfig": "config", "PredictConfig": "config",
    "BenchConfig": "config", "BenchSystem": "config", "RuntimeConfig": "config", "RuntimeName": "config",
    "Precision": "config",
    # training stages
    "finetune": "train.finetune", "train_supernet": "train.supernet", "self_distill": "train.distill",
    "compute_importance": "train.importance", "reorder": "train.importance",
    "convert_to_supernet": "train.supernet", "make_ofa": "train.supernet", "width_config": "train.supernet",
    "supernet_logits": "train.supernet",
    "soft_cross_entropy": "train.losses", "kl_divergence": "train.losses",
    # analysis and the whole pipeline
    "run_evaluation": "analysis.evaluate", "run_calibration": "analysis.calibrate", "run_pipeline": "pipeline",
    "paired_bootstrap": "stats", "mcnemar": "stats", "simulate_patience": "analysis.criteria",
    # the model side
    "load_classifier": "model.loading", "build_classifier": "model.loading", "save_classifier": "model.loading",
    "assign_weights": "model.loading", "head_mask_forward": "model.forward", "minilm_dir": "model.loading",
    "DynaFastModel": "model.dynafast", "AdaptiveClassifier": "model.exit", "Branches": "model.branches",
    "NarrowBertForSequenceClassification": "model.narrow", "extract_submodel": "model.narrow",
    "plain_state": "model.narrow", "StageInfo": "model.stage_info", "predict": "model.over_loader",
    "accuracy": "model.over_loader",
    # the runtime side
    "export_model": "runtime.export", "Predictor": "runtime.predictor", "open_runtime": "runtime.auto",
    "Runtime": "runtime.base", "ExportInfo": "runtime.export_info", "read_sign_key": "runtime.manifest",
    "serve": "runtime.serve", "create_app": "runtime.serve", "ModelServer": "runtime.serve",
    "run_bench": "runtime.bench", "open_configured": "runtime.auto",
    # data
    "load_splits": "data", "label_list": "data", "encode": "data", "make_loader": "data", "hold_out": "data",
    "read_inputs": "data",
    # errors
    "UserError": "errors", "ConfigError": "errors", "DataError": "errors", "CheckpointError": "errors",
    "ArtifactError": "errors", "UntrustedFileError": "errors", "OutputBusyError": "errors", "TrainingError": "errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'paddle_dynafast' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
