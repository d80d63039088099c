"""The runtime interface, and the typed, checked reader of an export directory.

Every runtime answers one call, ``run_batch(input_ids, token_type_ids, speed)
-> (probs [batch, num_labels], exit_layer [batch])``, on token ids
``[batch, seq]`` int64; ``speed`` is ignored by a model without the exit loop
(every sample then runs every layer). What the model is (labels, width, layers,
``max_seq_len``, whether the exit loop is inside, the shapes FLOPs need) is its
:class:`ExportInfo`. Export, predict, bench and serve use only this interface.

An export directory holds ``model.json``/``model.pdiparams`` (Paddle 3's PIR
format), optionally ``model.onnx``, the tokenizer, ``export.json`` and
``manifest.json`` (library versions and the sha256 of every file, checked by
:func:`verify` before anything is read).
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import artifacts
from ..config import BranchConfig
from ..errors import ArtifactError
from ..model.exit import sample_flops
from ..model.flops import BertShape, model_flops

PROGRAM = "model"
EXPORT_FILE = "export.json"
MANIFEST_FILE = "manifest.json"
ONNX_FILE = f"{PROGRAM}.onnx"
INT8_ONNX_FILE = f"{PROGRAM}.int8.onnx"
OUTPUTS = ("probs", "exit_layer", "uncertainty")
"""The outputs of the exit-loop program, in the order it returns them; the plain classifier returns ``probs``."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: str | Path) -> Dict[str, Any]:
    """Check every file against ``manifest.json``; returns the raw ``export.json``."""
    directory = Path(directory)
    if not (directory / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{directory} has no {MANIFEST_FILE}: not an exported model")
    manifest = artifacts.read_json(directory / MANIFEST_FILE)
    for name, digest in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing (listed in {MANIFEST_FILE})")
        if sha256(path) != digest:
            raise ArtifactError(f"{path} was altered: its sha256 differs from {MANIFEST_FILE}")
    return artifacts.read_json(directory / EXPORT_FILE)


@dataclass(frozen=True)
class ExportInfo:
    """What a runtime runs: ``export.json`` of an export directory, or the same facts of a dygraph model."""

    directory: Path
    """Where the tokenizer files are."""
    width: float
    exit_loop: bool
    num_layers: int
    labels: Tuple[str, ...]
    max_seq_len: int
    shape: BertShape
    """The full-width shape (FLOPs are counted against it)."""
    branch: Optional[BranchConfig] = None
    """The branches' size, with the exit loop."""
    outputs: Tuple[str, ...] = ()
    """The program's own output names, in the order of :data:`OUTPUTS` (``probs`` alone without the exit loop)."""
    onnx_outputs: Tuple[str, ...] = ()
    """The same for ``model.onnx``, when there is one."""
    source: str = ""
    """The directory it was exported from."""

    @classmethod
    def read(cls, directory: str | Path) -> "ExportInfo":
        """Verify the manifest, then read ``export.json``."""
        directory = Path(directory)
        raw = verify(directory)
        branch = raw.get("branch")
        return cls(directory=directory, width=float(raw["width"]), exit_loop=bool(raw["exit_loop"]),
                   num_layers=int(raw["num_layers"]), labels=tuple(raw["labels"]), max_seq_len=int(raw["max_seq_len"]),
                   shape=BertShape(**raw["full_width_shape"]),
                   branch=None if branch is None else BranchConfig(branch["cls_hidden_size"],
                                                                   branch["cls_num_attention_heads"],
                                                                   branch["dropout"]),
                   outputs=_program_names(raw, "outputs"), onnx_outputs=_program_names(raw, "onnx_outputs"),
                   source=str(raw.get("source", "")))

    @property
    def output_names(self) -> Tuple[str, ...]:
        """Our names of the outputs, in the program's order."""
        return OUTPUTS if self.exit_loop else OUTPUTS[:1]

    def flops(self, tokens: np.ndarray, exit_layer: np.ndarray) -> np.ndarray:
        """Analytic FLOPs of each sample ``[n]`` from its token count and exit layer, branches included."""
        if self.exit_loop:
            return sample_flops(self.shape, self.branch, tokens, exit_layer, self.width)
        return np.array([model_flops(self.shape, int(t), self.width) for t in tokens], dtype="float64")


def _program_names(raw: Dict[str, Any], key: str) -> Tuple[str, ...]:
    """``{"probs": "fetch_name_0", ...}`` in :data:`OUTPUTS` order. An export written before the names were recorded
    has a list of our names there; its outputs are then read by position (empty tuple)."""
    names = raw.get(key)
    if not isinstance(names, dict):
        return ()
    return tuple(names[n] for n in OUTPUTS if n in names)


class Runtime(ABC):
    """One way of running a model; see the module docstring."""

    kind: ClassVar[str]
    """The name ``--runtime`` takes."""
    info: ExportInfo

    @abstractmethod
    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        """``(probs [batch, num_labels] float32, exit_layer [batch] int64)`` of one batch ``[batch, seq]``."""

    def _outputs(self, by_name: Dict[str, np.ndarray], program_names: Sequence[str],
                 positional: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """``(probs, exit_layer)`` taken by the names recorded in ``export.json`` (by position for an old export)."""
        values = [by_name[n] for n in program_names] if program_names else list(positional)
        if len(values) < len(self.info.output_names):
            raise ArtifactError(f"{self.info.directory}: the program returns {len(values)} outputs, "
                                f"export.json expects {list(self.info.output_names)}")
        probs = values[0]
        if self.info.exit_loop:
            return probs, values[1]
        return probs, np.full(len(probs), self.info.num_layers, dtype="int64")
