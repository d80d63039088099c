"""FastBERT's adaptive inference, batched (arXiv 2004.02178, section 3.3).

After every Transformer layer a classifier predicts; a sample leaves at the
first layer whose normalised entropy ``-sum(p log p) / log(num_classes)`` is
below ``speed``; the last layer's classifier is the model's own. Unlike the
original FastBERT code, which runs one sample at a time, the loop here is
batched: samples that exit are removed from the batch (a gather on the rows
still undecided), later layers run on the rest only, and the results are
scattered back in input order. Speed 0 never exits early (entropy is never
negative): the output is exactly the final classifier's.

Written for the exported program as much as for dygraph: no dropout operator in
eval, the embeddings and the head with the fewest operators, and on a layer
where nobody leaves no compaction work at all (one ``any`` and an empty
conditional block), so that a batch in which few samples leave early costs
little more than the plain classifier (README, "Performance").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..errors import ConfigError
from .forward import dropout, embeddings_forward, encoder_layer_forward, extended_attention_mask

NOT_RUN = -1.0
"""The uncertainty reported for layers a sample did not run."""


MAX_UNCERTAINTY = 1 - 2 ** -20
"""The largest normalised entropy reported. A uniform prediction's is 1, and float32 rounding can put a nearly
uniform one a little above 1; bounded just below 1, every sample is below ``speed`` 1 and leaves after the first
layer, as speed 1 promises."""


def normalized_entropy(probs: paddle.Tensor) -> paddle.Tensor:
    """``-sum(p log p) / log(C)`` over the last axis of ``probs`` ``[..., C]``: 0 when sure, 1 when uniform (reported
    as :data:`MAX_UNCERTAINTY`)."""
    classes = probs.shape[-1]
    entropy = -(probs * paddle.log(paddle.clip(probs, min=1e-30))).sum(axis=-1) / math.log(classes)
    return paddle.clip(entropy, max=MAX_UNCERTAINTY)


def check_speed(speed: float) -> float:
    if not 0 <= speed <= 1:
        raise ConfigError(f"speed {speed} is not in [0, 1]")
    return float(speed)


class AdaptiveClassifier(nn.Layer):
    """A BERT classifier at one width with a branch after every layer but the last.

    ``backbone`` is a PaddleNLP ``BertForSequenceClassification`` (or the narrow
    sub-model of a supernet); ``branches`` holds ``num_layers - 1`` branch
    classifiers. Both are used as they are, not copied.
    """

    def __init__(self, backbone: nn.Layer, branches: Sequence[nn.Layer]):
        super().__init__()
        layers = len(backbone.bert.encoder.layers)
        if len(branches) != layers - 1:
            raise ValueError(f"{len(branches)} branches for a backbone of {layers} layers; need {layers - 1}")
        self.backbone = backbone
        self.branches = branches if isinstance(branches, nn.LayerList) else nn.LayerList(list(branches))

    @property
    def num_layers(self) -> int:
        return len(self.backbone.bert.encoder.layers)

    def classify(self, index: int, hidden: paddle.Tensor, mask: paddle.Tensor) -> paddle.Tensor:
        """Logits ``[batch, num_labels]`` of the classifier after layer ``index`` (0-based; the last is the model's)."""
        if index < self.num_layers - 1:
            return self.branches[index](hidden, mask)
        backbone = self.backbone
        return backbone.classifier(dropout(backbone.dropout, backbone.bert.pooler(hidden)))

    def hidden_states(self, input_ids: paddle.Tensor,
                      token_type_ids: Optional[paddle.Tensor] = None) -> Tuple[List[paddle.Tensor], paddle.Tensor]:
        """Hidden states after every layer (each ``[batch, seq, hidden]``) and the mask ``[batch, 1, 1, seq]``."""
        bert = self.backbone.bert
        mask = extended_attention_mask(input_ids, bert.pad_token_id)
        hidden = embeddings_forward(bert.embeddings, input_ids, token_type_ids)
        states = []
        for layer in bert.encoder.layers:
            hidden = encoder_layer_forward(layer, hidden, mask)
            states.append(hidden)
        return states, mask

    def layer_logits(self, input_ids: paddle.Tensor, token_type_ids: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """Every classifier's logits ``[batch, num_layers, num_labels]``, running all layers for all samples."""
        states, mask = self.hidden_states(input_ids, token_type_ids)
        return paddle.stack([self.classify(i, h, mask) for i, h in enumerate(states)], axis=1)

    def forward(self, input_ids: paddle.Tensor, token_type_ids: Optional[paddle.Tensor] = None,
                speed=0.0) -> Tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        """The batched exit loop.

        Returns ``probs`` ``[batch, num_labels]`` (of the classifier each sample
        left at), ``exit_layer`` ``[batch]`` (1-based: how many layers ran) and
        ``uncertainty`` ``[batch, num_layers]`` (normalised entropy at every layer
        run, ``NOT_RUN`` = -1 after the exit; not NaN, which Paddle's PIR JSON
        format cannot store). ``speed`` is a float or a float tensor ``[1]``.

        Written so that ``paddle.jit.to_static`` keeps it whole: the layer loop is
        unrolled, each layer sits under ``if alive`` (a conditional block in the
        static program, so layers after everyone has left do not run), the
        bookkeeping of leaving samples sits under ``if anyone leaves``, and no
        tensor that crosses such a block is ever empty.
        """
        bert, layers = self.backbone.bert, self.num_layers
        batch = paddle.shape(input_ids)[0]
        mask = extended_attention_mask(input_ids, bert.pad_token_id)  # [batch, 1, 1, seq]
        hidden = embeddings_forward(bert.embeddings, input_ids, token_type_ids)  # [batch, seq, hidden]
        rows = paddle.arange(batch, dtype="int64")  # input row of each sample still in the batch
        probs = paddle.zeros([batch, self.backbone.num_labels], dtype="float32")
        exit_layer = paddle.full([batch], layers, dtype="int64")  # overwritten for those who leave early
        uncertainty = paddle.full([batch * layers], NOT_RUN, dtype="float32")  # [batch * layers]
        hidden, mask, rows, probs, exit_layer, uncertainty, alive = self._step(
            0, hidden, mask, rows, probs, exit_layer, uncertainty, speed)
        for index in range(1, layers):
            if alive:  # [1] bool: someone is still in the batch
                hidden, mask, rows, probs, exit_layer, uncertainty, alive = self._step(
                    index, hidden, mask, rows, probs, exit_layer, uncertainty, speed)
        return probs, exit_layer, uncertainty.reshape([batch, layers])

    def _step(self, index, hidden, mask, rows, probs, exit_layer, uncertainty, speed):
        """Layer ``index`` on the samples still in the batch; those sure enough leave."""
        hidden = encoder_layer_forward(self.backbone.bert.encoder.layers[index], hidden, mask)
        p = F.softmax(self.classify(index, hidden, mask), axis=-1)  # [active, num_labels]
        u = normalized_entropy(p)  # [active]
        uncertainty = paddle.scatter(uncertainty, rows * self.num_layers + index, u)
        if index == self.num_layers - 1:  # everyone still here leaves with the final classifier
            return hidden, mask, rows, paddle.scatter(probs, rows, p), exit_layer, uncertainty, paddle.zeros([1], "bool")
        done = u < speed  # [active]
        alive = paddle.ones([1], dtype="bool")
        if paddle.any(done):  # nothing to do on a layer where nobody leaves
            hidden, mask, rows, probs, exit_layer, alive = self._leave(index, done, p, hidden, mask, rows, probs,
                                                                       exit_layer)
        return hidden, mask, rows, probs, exit_layer, uncertainty, alive

    @staticmethod
    def _leave(index, done, p, hidden, mask, rows, probs, exit_layer):
        """Record the samples that are ``done`` after layer ``index`` and keep the others in the batch."""
        leaving = paddle.nonzero(done).flatten()
        out_rows = paddle.gather(rows, leaving)
        probs = paddle.scatter(probs, out_rows, paddle.gather(p, leaving))
        exit_layer = paddle.scatter(exit_layer, out_rows, paddle.full_like(out_rows, index + 1))
        staying = paddle.nonzero(paddle.logical_not(done)).flatten()
        alive = paddle.shape(staying)[0:1] > 0
        if alive:  # keep the old (non-empty) tensors when nobody stays: they are not used again
            hidden, mask, rows = paddle.gather(hidden, staying), paddle.gather(mask, staying), paddle.gather(rows, staying)
        return hidden, mask, rows, probs, exit_layer, alive


# ----------------------------------------------------------------------------- results in NumPy


@dataclass
class ExitResult:
    """Adaptive predictions for a set of samples, in input order."""

    probs: np.ndarray
    """``[samples, num_labels]``: probabilities of the classifier each sample exited at."""
    labels: np.ndarray
    """``[samples]``: predicted label ids."""
    exit_layer: np.ndarray
    """``[samples]``: layers run (1-based)."""
    uncertainty: np.ndarray
    """``[samples, num_layers]``: normalised entropy at each layer run, ``NOT_RUN`` (-1) after the exit."""
    flops: np.ndarray
    """``[samples]``: analytic FLOPs, branches included."""


def simulate_exits(layer_probs: np.ndarray, speed: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the exit loop does at ``speed``, from every layer's probabilities ``[samples, layers, labels]``.

    Returns ``(probs [samples, labels], exit_layer [samples] (1-based), uncertainty [samples, layers])``;
    equal to :class:`AdaptiveClassifier`'s loop (tested), but every speed costs only NumPy.
    """
    check_speed(speed)
    p = np.asarray(layer_probs, dtype="float32")  # float32 like the loop, so thresholds fall the same way
    u = -(p * np.log(np.clip(p, np.float32(1e-30), None))).sum(-1) / np.float32(math.log(p.shape[-1]))
    u = np.minimum(u, np.float32(MAX_UNCERTAINTY))
    below = u[:, :-1] < speed
    exit_index = np.where(below.any(axis=1), below.argmax(axis=1), p.shape[1] - 1)
    rows = np.arange(len(p))
    uncertainty = np.where(np.arange(p.shape[1])[None, :] <= exit_index[:, None], u, NOT_RUN)
    return p[rows, exit_index], exit_index + 1, uncertainty
