"""Weight files: written as safetensors, read without running code; a pickle only when the user trusts it.

Every tensor paddle_dynafast keeps (a stage's weights, the branches, a
checkpoint's model and optimizer state) is written as safetensors: a JSON
header and raw arrays, which reading cannot turn into code. Paddle's own
``.pdparams``/``.pdopt`` files (``paddle.save``, PaddleNLP's default
``save_pretrained``, and earlier versions of paddle_dynafast) are pickles: unpickling
runs whatever the file says, so a crafted file runs its commands when it is
loaded. Those are read only with ``trust_pickle`` (``--trust-pickle``).

A weight file is a regular file of its directory (not a link: :mod:`paddle_dynafast.files`), and every float tensor
in it is finite: a NaN or an infinity is refused at load with the tensor named (it would make every prediction
NaN, or a NaN print where a probability belongs).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from .. import atomic, files
from ..errors import CheckpointError, UntrustedFileError

SAFE_WEIGHTS = "model.safetensors"
"""A model directory's weights, as PaddleNLP's ``save_pretrained(safe_serialization=True)`` names them."""
PICKLE_WEIGHTS = "model_state.pdparams"
"""The same, as PaddleNLP and older versions of paddle_dynafast wrote them (a pickle)."""


def save_weights(path: str | Path, weights: Mapping[str, Any]) -> None:
    """Write ``weights`` (tensors or arrays by name) as a safetensors file, atomically; a full disk is an
    ``OSError`` naming ``path``. PaddleNLP's ``from_pretrained`` reads the file (``format: np``)."""
    arrays = {name: np.ascontiguousarray(value.numpy() if hasattr(value, "numpy") else np.asarray(value))
              for name, value in weights.items()}
    atomic.write_bytes(path, save(arrays, metadata={"format": "np"}))


def check_trusted(path: str | Path, trust_pickle: bool) -> None:
    """Refuse to unpickle ``path`` unless the user said they trust it."""
    if not trust_pickle:
        raise UntrustedFileError(
            f"{path} is a pickle: loading it runs any code it carries. paddle_dynafast writes safetensors; "
            "pickles come from older versions, paddle.save or PaddleNLP's default save_pretrained. Pass "
            "--trust-pickle (trust_pickle=True) to load it if you trust where it came from")


def load_pickle(path: str | Path, trust_pickle: bool) -> Any:
    """``paddle.load`` of a pickle file the user trusts (:func:`check_trusted`)."""
    check_trusted(path, trust_pickle)
    import paddle

    return paddle.load(str(path))


def read_weights(path: str | Path, trust_pickle: bool = False) -> Dict[str, np.ndarray]:
    """Arrays by name from a safetensors file, or from a pickle (``.pdparams``) with ``trust_pickle``; a tensor
    that is not finite is refused (:func:`check_finite_weights`)."""
    path = files.check_regular(path)
    if path.suffix == ".safetensors":
        try:
            weights = dict(load_file(str(path)))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error
    else:
        state = load_pickle(path, trust_pickle)
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} holds a {type(state).__name__}, not weights by name")
        weights = {k: v.numpy() if hasattr(v, "numpy") else np.asarray(v) for k, v in state.items()}
    check_finite_weights(weights, path)
    return weights


def check_finite_weights(weights: Mapping[str, np.ndarray], source: str | Path) -> None:
    """Every floating-point tensor of ``weights`` is finite; the error names the first that is not, and how many of
    its values are NaN or infinite (never the values themselves)."""
    for name, value in weights.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise CheckpointError(f"{source}: tensor {name} holds {bad} of {array.size} values that are not finite "
                                  "(NaN or infinity): the weights are damaged")
