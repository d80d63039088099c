"""Analytic FLOPs per sample, from its real token count, its width and its exit layer: every count of the package.

FLOPs here are ``2 x multiply-accumulates`` of every matrix product: the Linear
layers, and the two attention products ``Q K^T`` and ``P V``. Element-wise work
(embedding look-ups, LayerNorm, softmax, GELU, residual adds) is left out; for
BERT it is a few percent of the total. Wall-clock time is measured separately,
because FLOPs alone do not say how fast a model runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import BranchConfig
from ..errors import ConfigError


@dataclass(frozen=True)
class BertShape:
    """The sizes that FLOPs depend on."""

    hidden_size: int
    num_layers: int
    num_heads: int
    head_dim: int
    intermediate_size: int
    num_labels: int

    @classmethod
    def from_config(cls, config) -> "BertShape":
        """From a PaddleNLP ``BertConfig``."""
        return cls(hidden_size=config.hidden_size, num_layers=config.num_hidden_layers,
                   num_heads=config.num_attention_heads, head_dim=config.hidden_size // config.num_attention_heads,
                   intermediate_size=config.intermediate_size, num_labels=config.num_labels)

    def heads_at(self, width: float) -> int:
        """Heads kept at ``width``; a width whose head count is not whole is an error."""
        heads = width * self.num_heads
        if not 0 < width <= 1:
            raise ConfigError(f"width {width} is not in (0, 1]")
        if abs(heads - round(heads)) > 1e-6:
            raise ConfigError(f"width {width} keeps {heads:g} of {self.num_heads} heads; the head count must be whole")
        return int(round(heads))

    def neurons_at(self, width: float) -> int:
        """FFN neurons kept at ``width`` (PaddleSlim's rule: ``int(width * intermediate_size)``)."""
        if not 0 < width <= 1:
            raise ConfigError(f"width {width} is not in (0, 1]")
        return int(width * self.intermediate_size)


def layer_flops(shape: BertShape, tokens: int, width: float = 1.0) -> int:
    """One Transformer layer on ``tokens`` tokens at ``width``."""
    h, t = shape.hidden_size, tokens
    inner = shape.heads_at(width) * shape.head_dim  # attention width kept
    neurons = shape.neurons_at(width)
    qkv = 3 * 2 * t * h * inner
    attention = 2 * (2 * t * t * inner)  # Q K^T and P V
    out = 2 * t * inner * h
    ffn = 2 * (2 * t * h * neurons)
    return qkv + attention + out + ffn


def head_flops(shape: BertShape) -> int:
    """Pooler and classifier on the [CLS] vector."""
    return 2 * shape.hidden_size * shape.hidden_size + 2 * shape.hidden_size * shape.num_labels


def model_flops(shape: BertShape, tokens: int, width: float = 1.0, layers: int | None = None) -> int:
    """The backbone up to ``layers`` (default all) plus the final pooler and classifier, for one sample."""
    layers = shape.num_layers if layers is None else layers
    if not 1 <= layers <= shape.num_layers:
        raise ValueError(f"layers {layers} is not in 1..{shape.num_layers}")
    if tokens < 1:
        raise ValueError(f"tokens must be >= 1, got {tokens}")
    return layers * layer_flops(shape, tokens, width) + head_flops(shape)


def full_flops(shape: BertShape, tokens: np.ndarray, width: float = 1.0) -> np.ndarray:
    """The model without exits at ``width`` on each sample of ``tokens`` tokens ``[n]``: every layer and the head."""
    return np.array([model_flops(shape, int(t), width) for t in np.asarray(tokens)], dtype="float64")


def branch_flops(hidden_size: int, num_labels: int, config: BranchConfig, tokens: int) -> int:
    """FLOPs (2 x multiply-accumulates) of one branch on one sample of ``tokens`` tokens."""
    c, t = config.cls_hidden_size, tokens
    if config.kind == "cls":
        return 2 * hidden_size * c + 2 * c * num_labels
    if config.kind == "mean":
        return 2 * t * hidden_size + 2 * hidden_size * c + 2 * c * num_labels  # the masked sum, then the head
    narrow = 2 * t * hidden_size * c
    keys_values = 2 * (2 * t * c * c)
    query_and_out = 2 * (2 * c * c)
    attention = 2 * (2 * t * c)  # one query row against t keys, then against t values
    head = 2 * c * c + 2 * c * num_labels
    return narrow + keys_values + query_and_out + attention + head


def sample_flops(shape: BertShape, branch_config: BranchConfig, tokens: np.ndarray, exit_layer: np.ndarray,
                 width: float) -> np.ndarray:
    """FLOPs of each sample: the layers it ran, the branches it consulted, and the final head if it got there."""
    out = np.empty(len(tokens), dtype="float64")
    for i, (t, e) in enumerate(zip(np.asarray(tokens), np.asarray(exit_layer))):
        e = int(e)
        branches = min(e, shape.num_layers - 1)
        out[i] = (e * layer_flops(shape, int(t), width)
                  + branches * branch_flops(shape.hidden_size, shape.num_labels, branch_config, int(t))
                  + (head_flops(shape) if e == shape.num_layers else 0))
    return out
