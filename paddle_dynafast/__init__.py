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
    "EvaluateConfig": "config", "CalibrateConfig": "config", "PipelineConfig": "pipeline",
    # stages
    "finetune": "train", "train_supernet": "supernet", "self_distill": "distill", "run_evaluation": "evaluate",
    "run_calibration": "calibrate", "export_model": "export", "run_pipeline": "pipeline",
    # models and inference
    "load_classifier": "backbone", "head_mask_forward": "backbone", "minilm_dir": "backbone",
    "DynaFastModel": "distill", "AdaptiveClassifier": "exit", "NarrowBertForSequenceClassification": "supernet",
    "Predictor": "export",
    # errors
    "DataError": "data", "CheckpointError": "backbone", "ArtifactError": "export",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'paddle_dynafast' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
