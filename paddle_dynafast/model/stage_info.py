"""A typed reader of a stage directory's ``stage.json``, with every fallback in one place.

A stage directory (written by ``finetune``, ``supernet`` or ``distill``) holds
its weights, the tokenizer, ``stage.json`` (the configuration that produced it,
its labels, example counts and library versions) and ``metrics.json``.
:meth:`StageInfo.read` also reads a directory that is not ours (a PaddleNLP or
Hugging Face model): it then has no stage, no labels of its own, the default
``max_seq_len`` and width 1.0 only.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .. import __version__, atomic, files
from ..config import DataConfig, default, from_dict, to_dict
from ..errors import ArtifactError

STAGE_FILE = "stage.json"
METRICS_FILE = "metrics.json"
MODEL_FILES = ("config.json", "model.safetensors", "model_state.pdparams", "vocab.txt", "tokenizer_config.json",
               STAGE_FILE, "branches.json", "branches.safetensors", "branches.pdparams")
"""Every file a model is read from in a model directory (the weights and branches in either format, the tokenizer,
the configurations): what an export's manifest records of its source (:mod:`paddle_dynafast.runtime.manifest`)."""


def versions() -> Dict[str, str]:
    """Versions of the libraries that shape the artifacts (read from the installed metadata, nothing imported)."""
    return {**{name: version(name) for name in ("paddlepaddle", "paddlenlp", "paddleslim")},
            "paddle_dynafast": __version__}


def normalize_config(config: Dict[str, Any], config_class: type) -> Dict[str, Any]:
    """``config`` (a stage.json ``config``) with the fields it lacks filled in, as ``to_dict(config_class(...))`` gives.

    A directory written before ``data.split_seed`` existed split its data with ``train.seed``.
    """
    config = dict(config)
    if "data" in config and "split_seed" not in config["data"]:
        seed = config.get("train", {}).get("seed", default(DataConfig, "split_seed"))
        config["data"] = {**config["data"], "split_seed": seed}
    return to_dict(from_dict(config_class, config))


@dataclass(frozen=True)
class StageInfo:
    """What a model directory says about itself."""

    directory: Path
    stage: Optional[str] = None
    """``finetune``, ``supernet`` or ``distill``; None for a directory we did not write."""
    complete: bool = False
    """The stage finished (a directory of a stage under way holds a checkpoint, not a model)."""
    labels: Optional[Tuple[str, ...]] = None
    """The label strings, in the order of the classifier's outputs; None when the directory does not say."""
    max_seq_len: int = default(DataConfig, "max_seq_len")
    """The token length the model was trained with."""
    split_seed: int = default(DataConfig, "split_seed")
    """The seed that chose the held-out dev slice of a data folder without dev."""
    holdout: int = default(DataConfig, "holdout")
    """Training examples kept out of training to calibrate with (``DataConfig.holdout``)."""
    widths: Tuple[float, ...] = (1.0,)
    """Widths the weights were trained for: a supernet's, a distilled model's branches', else 1.0."""
    versions: Dict[str, str] = field(default_factory=dict)
    config: Dict[str, Any] = field(default_factory=dict)
    """The configuration that produced the directory (as written; see :func:`normalize_config`)."""

    @classmethod
    def read(cls, directory: str | Path) -> "StageInfo":
        directory = Path(directory)
        path = directory / STAGE_FILE
        if not files.exists(path):
            return cls(directory)
        raw = atomic.read_json(path)
        try:
            config = raw.get("config", {})
            data = config.get("data", {})
            widths = raw.get("widths") or (config.get("widths") if raw.get("stage") == "supernet" else None) or (1.0,)
            return cls(directory=directory, stage=raw.get("stage"), complete=raw.get("complete") is True,
                       labels=tuple(raw["labels"]) if raw.get("labels") is not None else None,
                       max_seq_len=int(data.get("max_seq_len", default(DataConfig, "max_seq_len"))),
                       split_seed=int(data.get("split_seed", config.get("train", {}).get(
                           "seed", default(DataConfig, "split_seed")))),
                       holdout=int(data.get("holdout", default(DataConfig, "holdout"))),
                       widths=tuple(float(w) for w in widths), versions=dict(raw.get("versions", {})), config=config)
        except (AttributeError, TypeError, ValueError, OverflowError) as error:  # a list where an object belongs
            raise ArtifactError(f"{path} is malformed: {type(error).__name__} {error}") from None

    def teacher(self) -> Optional[Path]:
        """The fine-tuned model this directory descends from: itself for a finetune directory, the supernet's
        ``teacher_dir`` for a supernet, and through the supernet (or the classifier it was distilled from) for a
        distill directory; None when the chain is broken (a directory moved, or not written by us)."""
        if self.stage == "finetune":
            return self.directory
        parent = {"supernet": "teacher_dir", "distill": "model_dir"}.get(self.stage or "")
        source = self.config.get(parent) if parent else None
        if not source or not Path(source).is_dir():
            return None
        return StageInfo.read(source).teacher()

    def labels_or_numbers(self, num_labels: int) -> Tuple[str, ...]:
        """The labels, or ``"0"``, ``"1"``, ... for a directory that does not name them."""
        return self.labels if self.labels is not None else tuple(str(i) for i in range(num_labels))

    def data_config(self, data_dir: str, **changes) -> DataConfig:
        """A :class:`DataConfig` on ``data_dir`` cut as this model was trained (``max_seq_len``, ``split_seed``, the
        training examples it held out)."""
        return dataclasses.replace(DataConfig(data_dir=data_dir, max_seq_len=self.max_seq_len,
                                              split_seed=self.split_seed, holdout=self.holdout), **changes)

    def is_complete_with(self, stage: str, config: Any) -> bool:
        """A finished ``stage`` made with ``config`` (a moved directory still counts: ``output_dir`` is not
        compared)."""
        if self.stage != stage or not self.complete:
            return False
        mine = {k: v for k, v in normalize_config(self.config, type(config)).items() if k != "output_dir"}
        theirs = {k: v for k, v in to_dict(config).items() if k != "output_dir"}
        return mine == theirs
