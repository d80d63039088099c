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
    "DataConfig": "config",
    "TrainConfig": "config",
    "ModelSize": "config",
    "FinetuneConfig": "config",
    "load_classifier": "backbone",
    "head_mask_forward": "backbone",
    "minilm_dir": "backbone",
    "finetune": "train",
    "DataError": "data",
    "CheckpointError": "backbone",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'paddle_dynafast' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
