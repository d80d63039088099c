"""The deployable adaptive model: a backbone with FastBERT branches at one or more DynaBERT widths.

A distill directory holds the full-width backbone as a PaddleNLP directory
(heads and neurons in importance order when it comes from a supernet),
``branches.safetensors`` and ``branches.json`` (older versions wrote
``branches.pdparams``, a pickle, read only with ``trust_pickle``). A narrower width's backbone is cut
from it on load (:func:`paddle_dynafast.model.narrow.extract_submodel`), which
equals the supernet at that width.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, Tuple

from .. import atomic, files
from ..errors import ConfigError, MissingFileError
from .branches import Branches
from .exit import AdaptiveClassifier
from .loading import assign_weights, load_classifier
from .narrow import extract_submodel
from .weights import read_weights, save_weights

BRANCH_WEIGHTS = "branches.safetensors"
PICKLE_BRANCH_WEIGHTS = "branches.pdparams"
"""What earlier versions wrote (a pickle)."""
BRANCH_FILE = "branches.json"


class DynaFastModel:
    """A backbone with branches at one or more widths; :meth:`at` gives the exit-loop model of a width."""

    def __init__(self, backbone, tokenizer, branches: Branches, labels: Sequence[str]):
        self.backbone, self.tokenizer, self.branches, self.labels = backbone, tokenizer, branches, list(labels)
        self._at: Dict[float, AdaptiveClassifier] = {}

    @property
    def widths(self) -> Tuple[float, ...]:
        return self.branches.widths

    def at(self, width: float) -> AdaptiveClassifier:
        """The :class:`AdaptiveClassifier` of ``width`` (built once, in eval mode)."""
        width = float(width)
        if width not in self.widths:
            raise ConfigError(f"width {width} has no branches; this model has widths {list(self.widths)}")
        if width not in self._at:
            backbone = self.backbone if width == 1.0 else extract_submodel(self.backbone, self.backbone.config, width)
            backbone.eval()
            self._at[width] = AdaptiveClassifier(backbone, self.branches.at(width))
        return self._at[width]

    def save_branches(self, directory: Path) -> None:
        save_weights(directory / BRANCH_WEIGHTS, self.branches.state_dict())
        atomic.write_json(directory / BRANCH_FILE, {**self.branches.describe(), "labels": self.labels})

    @staticmethod
    def has_branches(directory: str | Path) -> bool:
        return files.exists(Path(directory) / BRANCH_FILE)

    @classmethod
    def load(cls, directory: str | Path, trust_pickle: bool = False) -> "DynaFastModel":
        """Read a distill directory; a directory without branches is an error that says so. Pickled weights (an
        older version's) are read only with ``trust_pickle``."""
        directory = Path(directory)
        if not cls.has_branches(directory):
            raise MissingFileError(f"{directory} has no {BRANCH_FILE}: it is not a model with branches "
                                   "(run `paddle-dynafast distill` on it first)")
        description = atomic.read_json(directory / BRANCH_FILE)
        loaded = load_classifier(directory, trust_pickle=trust_pickle)
        branches = Branches.from_description(description)
        weights = directory / BRANCH_WEIGHTS
        if not files.exists(weights) and files.exists(directory / PICKLE_BRANCH_WEIGHTS):
            weights = directory / PICKLE_BRANCH_WEIGHTS
        if not files.exists(weights):
            raise MissingFileError(f"{directory} has {BRANCH_FILE} but no {BRANCH_WEIGHTS}")
        assign_weights(branches, read_weights(weights, trust_pickle))
        branches.eval()
        return cls(loaded.model, loaded.tokenizer, branches, description["labels"])
