"""What an export directory holds, and its typed reader :class:`ExportInfo`.

An export directory holds ``model.json``/``model.pdiparams`` (Paddle 3's PIR
format), optionally ``model.onnx`` and ``model.int8.onnx``, the tokenizer,
``export.json`` (what the program is: labels, width, layers, ``max_seq_len``,
whether the exit loop is inside, the shapes FLOPs need, its input and output
names) and ``manifest.json`` (:mod:`.manifest`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import atomic
from ..config import BranchConfig
from ..errors import ArtifactError
from ..model.branches import branch_config
from ..model.flops import BertShape, full_flops, sample_flops
from .manifest import verify
from .promise import Promise

PROGRAM = "model"


EXPORT_FILE = "export.json"


ONNX_FILE = f"{PROGRAM}.onnx"


INT8_ONNX_FILE = f"{PROGRAM}.int8.onnx"


OUTPUTS = ("probs", "exit_layer", "uncertainty")
"""The outputs of the exit-loop program, in the order it returns them; the plain classifier returns ``probs``."""


INPUTS = ("input_ids", "token_type_ids", "speed")
"""The inputs of the exit-loop program; the plain classifier takes the first two."""


def read_export_json(directory: str | Path, sign_key: Optional[bytes] = None) -> Dict[str, Any]:
    """The raw ``export.json`` of ``directory``, after every file was checked against the manifest (and its
    signature with ``sign_key``)."""
    verify(directory, sign_key, required=(EXPORT_FILE,))
    return atomic.read_json(Path(directory) / EXPORT_FILE)


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
    inputs: Tuple[str, ...] = ()
    """The program's input names (:data:`INPUTS`; the first two without the exit loop)."""
    onnx_outputs: Tuple[str, ...] = ()
    """The same for ``model.onnx``, when there is one."""
    source: str = ""
    """The directory it was exported from."""
    promise: Optional[Promise] = None
    """What the calibration that chose its (width, speed) promised; None for an export made without one."""

    @classmethod
    def read(cls, directory: str | Path, sign_key: Optional[bytes] = None) -> "ExportInfo":
        """Verify the manifest (and its signature with ``sign_key``), then read ``export.json``; a missing or
        malformed entry is an error naming it."""
        directory = Path(directory)
        raw = read_export_json(directory, sign_key)
        try:
            branch = raw.get("branch")
            info = cls(directory=directory, width=float(raw["width"]), exit_loop=bool(raw["exit_loop"]),
                       num_layers=int(raw["num_layers"]), labels=tuple(str(x) for x in raw["labels"]),
                       max_seq_len=int(raw["max_seq_len"]), shape=BertShape(**raw["full_width_shape"]),
                       branch=None if branch is None else branch_config(branch),
                       outputs=_program_names(raw, "outputs"), onnx_outputs=_program_names(raw, "onnx_outputs"),
                       inputs=tuple(raw.get("inputs", INPUTS[:3 if raw["exit_loop"] else 2])),
                       source=str(raw.get("source", "")),
                       promise=None if raw.get("promise") is None else Promise.from_json(raw["promise"]))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ArtifactError(f"{directory / EXPORT_FILE} is malformed: {type(error).__name__} {error}") from error
        if info.num_layers != info.shape.num_layers:
            raise ArtifactError(f"{directory / EXPORT_FILE}: num_layers {info.num_layers} differs from its "
                                f"full_width_shape's {info.shape.num_layers}")
        return info

    @property
    def default_speed(self) -> float:
        """The speed a text runs at when none is given: the one the export's promise is about, else 0 (no early
        exit)."""
        return self.promise.speed if self.promise is not None and self.exit_loop else 0.0

    @property
    def output_names(self) -> Tuple[str, ...]:
        """Our names of the outputs, in the program's order."""
        return OUTPUTS if self.exit_loop else OUTPUTS[:1]

    def flops(self, tokens: np.ndarray, exit_layer: np.ndarray) -> np.ndarray:
        """Analytic FLOPs of each sample ``[n]`` from its token count and exit layer, branches included."""
        if self.exit_loop:
            return sample_flops(self.shape, self.branch, tokens, exit_layer, self.width)
        return full_flops(self.shape, tokens, self.width)


def _program_names(raw: Dict[str, Any], key: str) -> Tuple[str, ...]:
    """``{"probs": "fetch_name_0", ...}`` in :data:`OUTPUTS` order. An export written before the names were recorded
    has a list of our names there; its outputs are then read by position (empty tuple)."""
    names = raw.get(key)
    if not isinstance(names, dict):
        return ()
    return tuple(names[n] for n in OUTPUTS if n in names)
