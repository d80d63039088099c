"""The runtime interface.

Every runtime answers one call, ``run_batch(input_ids, token_type_ids, speed)
-> (probs [batch, num_labels], exit_layer [batch])``, on token ids
``[batch, seq]`` int64; ``speed`` is ignored by a model without the exit loop
(every sample then runs every layer). What the model is (labels, width, layers,
``max_seq_len``, whether the exit loop is inside, the shapes FLOPs need) is its
:class:`~paddle_dynafast.runtime.export_info.ExportInfo`. Export, predict, bench
and serve use only this interface.

When a runtime opens an export it checks ``export.json`` against the program
itself (:meth:`Runtime.check_program`): the input and output names, and one
text of ``max_seq_len`` tokens at speed 0, which must give one finite probability per
label and, with the exit loop, run ``num_layers`` layers.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Dict, Sequence, Tuple

import numpy as np

from ..config.runtime import Precision, RuntimeName
from ..errors import ArtifactError, summary
from .export_info import EXPORT_FILE, ExportInfo


class Runtime(ABC):
    """One way of running a model; see the module docstring."""

    kind: ClassVar[RuntimeName]
    """The name ``--runtime`` takes."""
    precisions: ClassVar[Tuple[Precision, ...]] = (Precision.FP32,)
    """The arithmetic it can run the model in (``precision=`` of its constructor)."""
    precision: Precision = Precision.FP32
    info: ExportInfo

    @abstractmethod
    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        """``(probs [batch, num_labels] float32, exit_layer [batch] int64)`` of one batch ``[batch, seq]``."""

    def check_program(self, input_names: Sequence[str], output_names: Sequence[str],
                      recorded_outputs: Sequence[str]) -> None:
        """``export.json`` against the program: its input and output names, and one text of ``max_seq_len``
        tokens at speed 0, which must give one probability per label and, with the exit loop, run every layer.
        Each mismatch is an :class:`ArtifactError` naming the entry."""
        info, where = self.info, self.info.directory / EXPORT_FILE
        if sorted(input_names) != sorted(info.inputs):
            raise ArtifactError(f"{where} lists inputs {list(info.inputs)}; the program takes {list(input_names)}")
        if recorded_outputs and sorted(recorded_outputs) != sorted(output_names):
            raise ArtifactError(f"{where} lists outputs {list(recorded_outputs)}; the program returns "
                                f"{list(output_names)}")
        ids = np.ones((1, info.max_seq_len), dtype="int64")  # [1, max_seq_len]: any token id, no padding
        try:
            probs, exit_layer = self.run_batch(ids, np.zeros_like(ids), 0.0)
        except Exception as error:  # Paddle's embedding error when the position table is shorter, say
            raise ArtifactError(f"{where}: the program fails on a text of max_seq_len {info.max_seq_len} tokens: "
                                f"{summary(error)}") from error
        if tuple(np.shape(probs)) != (1, len(info.labels)):
            raise ArtifactError(f"{where} lists {len(info.labels)} labels {list(info.labels)}; the program returns "
                                f"probabilities of shape {list(np.shape(probs))}")
        if not np.isfinite(probs).all():  # NaN weights: every answer would be NaN (never printed as one)
            raise ArtifactError(f"{info.directory}: the program gives probabilities that are not finite (NaN or "
                                "infinity) on a text of max_seq_len tokens: its weights are damaged")
        if info.exit_loop and int(np.asarray(exit_layer).reshape(-1)[0]) != info.num_layers:
            raise ArtifactError(f"{where} says num_layers {info.num_layers}; at speed 0 the program runs "
                                f"{int(np.asarray(exit_layer).reshape(-1)[0])} layers")

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
