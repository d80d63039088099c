"""Branch classifiers after every layer: FastBERT's (arXiv 2004.02178, section 3.1, "student classifiers") and a
[CLS]-only one.

A FastBERT branch (``kind="attention"``) reads the hidden states ``[batch, seq,
hidden]`` after one Transformer layer: a narrowing dense layer to
``cls_hidden_size`` (tanh), self-attention with ``cls_num_attention_heads`` heads,
the [CLS] position, a pre-logits dense layer (tanh) and a logits layer, as in the
paper's ``FastBERTClassifier``. A pooling branch reads one vector: the mean of the
hidden states over the tokens (``kind="mean"``, the pooling all-MiniLM-L6-v2 was
trained with) or the [CLS] state alone (``kind="cls"``, as the branches of DeeBERT,
arXiv 2004.12993, and PABEE, arXiv 2006.04152), then a dense layer to
``cls_hidden_size`` (tanh) and the logits: a handful of operators, without the
FastBERT branch's self-attention.

Where we differ: only the [CLS] position of the branch's self-attention is ever
used, so we compute that one query (keys and values still cover every token).
The result is the same as taking position 0 of the full self-attention; the
cost per branch drops from ``O(seq * cls_hidden^2)`` queries and outputs to one.
The hidden size stays the same at every width, so one branch can read the
hidden states of any width of the supernet.
"""
from __future__ import annotations

from typing import Dict, Sequence

import paddle
import paddle.nn as nn

from ..config import BranchConfig
from ..errors import ConfigError
from .forward import MASK_VALUE, dropout, self_attention


class FastBERTClassifier(nn.Layer):
    """One branch: hidden states ``[batch, seq, hidden]`` and additive mask ``[batch, 1, 1, seq]`` -> logits."""

    def __init__(self, hidden_size: int, num_labels: int, config: BranchConfig = BranchConfig()):
        super().__init__()
        c = config.cls_hidden_size
        self.narrow = nn.Linear(hidden_size, c)
        self.attention = nn.MultiHeadAttention(c, config.cls_num_attention_heads, dropout=config.dropout)
        self.prelogits = nn.Linear(c, c)
        self.logits = nn.Linear(c, num_labels)

    def forward(self, hidden: paddle.Tensor, mask: paddle.Tensor) -> paddle.Tensor:
        narrow = paddle.tanh(self.narrow(hidden))  # [batch, seq, c]
        cls = self_attention(self.attention, narrow, mask, query=narrow[:, :1])  # [batch, 1, c]
        return self.logits(paddle.tanh(self.prelogits(cls[:, 0])))  # [batch, num_labels]


class PooledClassifier(nn.Layer):
    """One pooling branch: hidden states ``[batch, seq, hidden]`` pooled to one vector (``kind="cls"``: the [CLS]
    position; ``kind="mean"``: the mean over the tokens the additive mask ``[batch, 1, 1, seq]`` keeps), then a
    dense layer (tanh) and the logits."""

    def __init__(self, hidden_size: int, num_labels: int, config: BranchConfig = BranchConfig(kind="mean")):
        super().__init__()
        self.kind = config.kind
        self.dense = nn.Linear(hidden_size, config.cls_hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.logits = nn.Linear(config.cls_hidden_size, num_labels)

    def forward(self, hidden: paddle.Tensor, mask: paddle.Tensor) -> paddle.Tensor:
        if self.kind == "cls":
            pooled = hidden[:, 0]  # [batch, hidden]
        else:
            keep = paddle.reshape(mask, [0, -1, 1]) * (-1 / MASK_VALUE) + 1  # [batch, seq, 1]: 1 kept, 0 padding
            pooled = (hidden * keep).sum(axis=1) / keep.sum(axis=1)  # [batch, hidden]
        return self.logits(dropout(self.dropout, paddle.tanh(self.dense(pooled))))  # [batch, num_labels]


def make_branch(hidden_size: int, num_labels: int, config: BranchConfig) -> nn.Layer:
    """A branch of ``config.kind``."""
    if config.kind == "attention":
        return FastBERTClassifier(hidden_size, num_labels, config)
    return PooledClassifier(hidden_size, num_labels, config)


class Branches(nn.Layer):
    """A branch after every Transformer layer but the last (the last layer uses the model's own classifier).

    With ``widths`` given and ``shared=False`` there is one set per width, keyed
    by width; otherwise one set serves every width.
    """

    def __init__(self, num_layers: int, hidden_size: int, num_labels: int, config: BranchConfig = BranchConfig(),
                 widths: Sequence[float] = (1.0,), shared: bool = True):
        super().__init__()
        if num_layers < 2:
            raise ConfigError(f"a model of {num_layers} layer(s) has no layer to exit early from")
        self.config, self.shared, self.widths = config, shared, tuple(float(w) for w in widths)
        self.num_layers, self.hidden_size, self.num_labels = num_layers, hidden_size, num_labels
        keys = ["shared"] if shared else [self.key(w) for w in self.widths]
        self.sets = nn.LayerDict({key: nn.LayerList([make_branch(hidden_size, num_labels, config)
                                                     for _ in range(num_layers - 1)]) for key in keys})

    @staticmethod
    def key(width: float) -> str:
        return f"width_{float(width):g}".replace(".", "_")

    def at(self, width: float) -> nn.LayerList:
        """The branches used at ``width`` (one per layer but the last)."""
        if self.shared:
            return self.sets["shared"]
        key = self.key(width)
        if key not in self.sets:
            raise KeyError(f"no branches for width {width}; this model has widths {list(self.widths)}")
        return self.sets[key]

    def describe(self) -> Dict[str, object]:
        """What is needed to build the same branches again (written to the stage directory)."""
        return {"num_layers": self.num_layers, "hidden_size": self.hidden_size, "num_labels": self.num_labels,
                "widths": list(self.widths), "shared": self.shared, "kind": self.config.kind,
                "cls_hidden_size": self.config.cls_hidden_size,
                "cls_num_attention_heads": self.config.cls_num_attention_heads, "dropout": self.config.dropout}

    @classmethod
    def from_description(cls, description: Dict[str, object]) -> "Branches":
        config = branch_config(description)
        return cls(description["num_layers"], description["hidden_size"], description["num_labels"], config,
                   widths=description["widths"], shared=description["shared"])


def branch_config(description: Dict[str, object]) -> BranchConfig:
    """The :class:`BranchConfig` of a branches description (``branches.json``, ``export.json``'s ``branch``)."""
    return BranchConfig(kind=description.get("kind", "attention"),  # written before branch kinds: FastBERT's
                        cls_hidden_size=description["cls_hidden_size"],
                        cls_num_attention_heads=description["cls_num_attention_heads"],
                        dropout=description["dropout"])
