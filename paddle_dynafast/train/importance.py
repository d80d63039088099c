"""Importance of attention heads and FFN neurons, and reordering by it (DynaBERT, arXiv 2004.04037).

DynaBERT (section 3.1) and PaddleSlim's tutorial score a head by the gradient of
the loss with respect to an all-ones head mask, and an FFN neuron by
``|sum(w * dL/dw)|`` over its incoming weights and bias plus its outgoing weights;
then they permute heads and neurons so the most important come first, so that
keeping the first ``width`` share of each layer keeps the best ones.

Where we differ from PaddleNLP's ``compute_neuron_head_importance``: it scores on
the dev split that is also used to report accuracy; we score on a held-out slice
of the training data. We reorder the plain model before PaddleSlim's ``Convert``,
so no ``.fn`` indirection is needed, and the permutations are pure NumPy
functions tested against the model's own outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..model.forward import head_mask_forward


@dataclass(frozen=True)
class Importance:
    heads: np.ndarray
    """``[num_layers, num_heads]``: accumulated ``|dL/d head_mask|``."""
    neurons: np.ndarray
    """``[num_layers, intermediate_size]``: accumulated FFN neuron scores."""

    def head_order(self) -> np.ndarray:
        """``[num_layers, num_heads]``: head indices, most important first (stable for ties)."""
        return np.argsort(-self.heads, axis=1, kind="stable")

    def neuron_order(self) -> np.ndarray:
        """``[num_layers, intermediate_size]``: neuron indices, most important first."""
        return np.argsort(-self.neurons, axis=1, kind="stable")


def _encoder_layers(model: nn.Layer) -> List[nn.TransformerEncoderLayer]:
    layers = [layer for layer in model.sublayers() if isinstance(layer, nn.TransformerEncoderLayer)]
    if not layers:
        raise TypeError(f"{type(model).__name__} has no TransformerEncoderLayer to score")
    return layers


def compute_importance(model: nn.Layer, batches: Iterable[Dict[str, paddle.Tensor]],
                       loss_fn: Callable[[paddle.Tensor, paddle.Tensor], paddle.Tensor] = F.cross_entropy) -> Importance:
    """Score every head and FFN neuron of a ``BertForSequenceClassification`` on labelled ``batches``.

    Runs in eval mode (no dropout) with gradients; the model's parameters and
    their gradients are left as they were (gradients are cleared).
    """
    layers = _encoder_layers(model)
    num_heads = layers[0].self_attn.num_heads
    head_mask = paddle.ones([len(layers), num_heads], dtype="float32")  # [layers, heads]
    head_mask.stop_gradient = False
    heads = np.zeros([len(layers), num_heads], dtype="float64")
    neurons = np.zeros([len(layers), layers[0].linear1.weight.shape[1]], dtype="float64")
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with head_mask_forward(model):
            for batch in batches:
                logits = model(batch["input_ids"], token_type_ids=batch["token_type_ids"], head_mask=head_mask)
                loss_fn(logits, batch["labels"]).backward()
                heads += np.abs(head_mask.grad.numpy())
                for i, layer in enumerate(layers):
                    w1, b1, w2 = layer.linear1.weight, layer.linear1.bias, layer.linear2.weight
                    # w1 [hidden, inter], b1 [inter], w2 [inter, hidden]
                    incoming = (w1.numpy() * w1.grad.numpy()).sum(0) + b1.numpy() * b1.grad.numpy()
                    outgoing = (w2.numpy() * w2.grad.numpy()).sum(1)
                    neurons[i] += np.abs(incoming) + np.abs(outgoing)
                head_mask.clear_gradient()
                model.clear_gradients()
                seen += 1
    finally:
        if was_training:
            model.train()
    if seen == 0:
        raise ValueError("compute_importance got no batches")
    return Importance(heads=heads, neurons=neurons)


# ----------------------------------------------------------------------------- permutations (NumPy)


def head_columns(order: np.ndarray, head_dim: int) -> np.ndarray:
    """Feature indices ``[heads * head_dim]`` that put the heads in ``order``."""
    return (np.asarray(order)[:, None] * head_dim + np.arange(head_dim)[None, :]).reshape(-1)


def permute_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray, bq: np.ndarray,
                      bk: np.ndarray, bv: np.ndarray, order: np.ndarray, head_dim: int):
    """Heads in ``order``: columns of ``q/k/v`` ``[hidden, heads*head_dim]`` and their biases, rows of ``out``."""
    cols = head_columns(order, head_dim)
    return q[:, cols], k[:, cols], v[:, cols], out[cols, :], bq[cols], bk[cols], bv[cols]


def permute_ffn(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, order: np.ndarray):
    """Neurons in ``order``: columns of ``w1`` ``[hidden, inter]`` and ``b1``, rows of ``w2`` ``[inter, hidden]``."""
    return w1[:, order], b1[order], w2[order, :]


def reorder(model: nn.Layer, importance: Importance) -> None:
    """Permute every layer's heads and FFN neurons in place, most important first; outputs do not change."""
    layers = _encoder_layers(model)
    head_orders, neuron_orders = importance.head_order(), importance.neuron_order()
    if head_orders.shape != (len(layers), layers[0].self_attn.num_heads):
        raise ValueError(f"head importance has shape {list(head_orders.shape)}, the model has "
                         f"{len(layers)} layers of {layers[0].self_attn.num_heads} heads")
    for layer, heads, neurons in zip(layers, head_orders, neuron_orders):
        attn = layer.self_attn
        linears = [attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj]
        permuted = permute_attention(*(p.weight.numpy() for p in linears), attn.q_proj.bias.numpy(),
                                     attn.k_proj.bias.numpy(), attn.v_proj.bias.numpy(), heads, attn.head_dim)
        for linear, weight in zip(linears, permuted[:4]):
            linear.weight.set_value(weight)
        for linear, bias in zip(linears[:3], permuted[4:]):
            linear.bias.set_value(bias)
        w1, b1, w2 = permute_ffn(layer.linear1.weight.numpy(), layer.linear1.bias.numpy(),
                                 layer.linear2.weight.numpy(), neurons)
        layer.linear1.weight.set_value(w1)
        layer.linear1.bias.set_value(b1)
        layer.linear2.weight.set_value(w2)
