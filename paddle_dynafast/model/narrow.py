"""A fixed width of a DynaBERT supernet as a standalone PaddleNLP model (arXiv 2004.04037).

A width keeps the first ``width`` share of every layer's attention heads and FFN
neurons, which the supernet stage has put in importance order. It becomes a
:class:`NarrowBertForSequenceClassification`: PaddleNLP's
``BertForSequenceClassification`` whose attention projections keep
``kept_attention_heads * head_dim`` features and whose FFN keeps
``intermediate_size`` neurons, saved with ``save_pretrained`` and loaded with
``from_pretrained``. (A plain ``BertForSequenceClassification`` cannot hold it:
PaddleNLP derives ``head_dim`` from ``hidden_size / num_attention_heads`` and
builds square attention projections.) Nothing here needs PaddleSlim.
"""
from __future__ import annotations

import copy
from typing import Dict, Sequence, Tuple

import numpy as np
import paddle.nn as nn
from paddlenlp.transformers import BertForSequenceClassification

from ..config import normalize_widths
from .flops import BertShape
from .loading import assign_weights


def check_widths(widths: Sequence[float], shape: BertShape) -> Tuple[float, ...]:
    """:func:`~paddle_dynafast.config.normalize_widths`, plus a whole head count at every width for ``shape``."""
    widths = normalize_widths(widths)
    for width in widths:
        shape.heads_at(width)
    return widths


def plain_state(model: nn.Layer) -> Dict[str, np.ndarray]:
    """The weights of a model under the plain PaddleNLP names (a PaddleSlim supernet's ``.fn.`` removed)."""
    return {name.replace(".fn.", "."): value.numpy() for name, value in model.state_dict().items()}


class NarrowBertForSequenceClassification(BertForSequenceClassification):
    """``BertForSequenceClassification`` keeping ``config.kept_attention_heads`` heads per layer.

    ``config.num_attention_heads`` stays the original count, so ``head_dim`` is
    the teacher's; ``config.intermediate_size`` is already the narrowed FFN size.
    PaddleNLP's own ``forward`` runs it unchanged (it reshapes by ``num_heads``
    and ``head_dim``). Loads with ``from_pretrained``.
    """

    def __init__(self, config):
        super().__init__(config)
        kept = int(config.kept_attention_heads)
        for layer in self.bert.encoder.layers:
            attn = layer.self_attn
            if not 0 < kept <= attn.num_heads:
                raise ValueError(f"kept_attention_heads {kept} is not in 1..{attn.num_heads}")
            inner, hidden = kept * attn.head_dim, config.hidden_size
            attn.q_proj, attn.k_proj, attn.v_proj = (nn.Linear(hidden, inner) for _ in range(3))
            attn.out_proj = nn.Linear(inner, hidden)
            attn.num_heads = kept
            for linear in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
                self._init_weights(linear)


def narrow_weights(state: Dict[str, np.ndarray], shape: BertShape, width: float) -> Dict[str, np.ndarray]:
    """The first heads and neurons of every layer: the sub-network a supernet runs at ``width``.

    ``state`` holds full-width weights under plain PaddleNLP names (Paddle
    layout ``[in, out]``); heads and neurons are already ordered by importance.
    """
    inner = shape.heads_at(width) * shape.head_dim
    neurons = shape.neurons_at(width)
    out = {}
    for name, value in state.items():
        module, _, param = name.rpartition(".")
        if module.endswith(("q_proj", "k_proj", "v_proj")):
            value = value[..., :inner]  # weight [hidden, inner], bias [inner]
        elif module.endswith("out_proj") and param == "weight":
            value = value[:inner, :]  # [inner, hidden]
        elif module.endswith("linear1"):
            value = value[..., :neurons]  # weight [hidden, neurons], bias [neurons]
        elif module.endswith("linear2") and param == "weight":
            value = value[:neurons, :]  # [neurons, hidden]
        out[name] = np.ascontiguousarray(value)
    return out


def extract_submodel(model: nn.Layer, config, width: float) -> NarrowBertForSequenceClassification:
    """A standalone model equal to the supernet (or reordered model) ``model`` at ``width``."""
    shape = BertShape.from_config(config)
    narrow_config = copy.deepcopy(config)
    narrow_config.kept_attention_heads = shape.heads_at(width)
    narrow_config.intermediate_size = shape.neurons_at(width)
    narrow_config.dynabert_width = float(width)
    narrow_config.architectures = ["NarrowBertForSequenceClassification"]
    sub = NarrowBertForSequenceClassification(narrow_config)
    assign_weights(sub, narrow_weights(plain_state(model), shape, width))
    sub.eval()
    return sub


def count_parameters(model: nn.Layer, include_embeddings: bool = True) -> int:
    """Number of parameters, optionally without the embedding tables."""
    return int(sum(int(np.prod(p.shape)) for name, p in model.named_parameters()
                   if include_embeddings or ".embeddings." not in f".{name}"))
