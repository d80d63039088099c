"""Analytic FLOPs per sample, from its real token count, its width and its exit layer.

FLOPs here are ``2 x multiply-accumulates`` of every matrix product: the Linear
layers, and the two attention products ``Q K^T`` and ``P V``. Element-wise work
(embedding look-ups, LayerNorm, softmax, GELU, residual adds) is left out; for
BERT it is a few percent of the total. Wall-clock time is measured separately,
because FLOPs alone do not say how fast a model runs.
"""
from __future__ import annotations

from dataclasses import dataclass

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
