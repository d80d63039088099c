"""Running a model over a ``paddle.io`` loader: rows back in dataset order, every rank gets every row."""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np
import paddle
import paddle.nn.functional as F

from .. import distributed
from .exit import AdaptiveClassifier


@paddle.no_grad()
def predict(forward: Callable[[Dict[str, paddle.Tensor]], paddle.Tensor], loader: paddle.io.DataLoader) -> np.ndarray:
    """``forward(batch)`` over ``loader``, rows put back in dataset order: ``[examples, ...]``.

    With a loader sharded among data-parallel ranks, every rank gets every row.
    """
    rows, order = [], []
    for batch in loader:
        rows.append(forward(batch).numpy())
        order.append(batch["index"].numpy())
    parts = [(rows, order)]
    if loader.batch_sampler.nranks > 1:
        parts = distributed.gather((rows, order))
    rows = [r for part_rows, _ in parts for r in part_rows]
    order = [o for _, part_order in parts for o in part_order]
    values = np.concatenate(rows)
    out = np.empty_like(values)
    out[np.concatenate(order)] = values
    return out


def predict_logits(model: paddle.nn.Layer, loader: paddle.io.DataLoader) -> np.ndarray:
    """Logits ``[examples, num_labels]`` of a classifier over ``loader``, in dataset order."""
    model.eval()
    return predict(lambda batch: model(batch["input_ids"], token_type_ids=batch["token_type_ids"]), loader)


def layer_probabilities(adaptive: AdaptiveClassifier, loader: paddle.io.DataLoader) -> np.ndarray:
    """Every classifier's probabilities ``[examples, num_layers, num_labels]``, in dataset order."""
    adaptive.eval()
    return predict(lambda b: F.softmax(adaptive.layer_logits(b["input_ids"], b["token_type_ids"]), axis=-1), loader)


def accuracy(logits: np.ndarray, labels: Sequence[int]) -> float:
    """Share of rows whose arg-max is the label."""
    return float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())
