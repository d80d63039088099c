"""The BERT forward with head masks, for the instance that needs it.

:func:`head_mask_forward` patches the ``forward`` of one model *instance* (its
``BertModel``, its encoder layers and the classifier itself) so that it takes
``head_mask`` (``[num_layers, num_heads]`` or ``[num_heads]``, 1 keeps a head,
as in Hugging Face ``modeling_bert``), and restores the original in
``finally``. This is the forward DynaBERT (arXiv 2004.04037) needs for head
importance. The number of heads is read from the width of the query
projection, so the same forward runs PaddleSlim supernets at any width
without mutating ``num_heads`` (PaddleNLP's ``ofa_utils`` mutates it inside
``forward``) and without overloading ``attention_mask`` as a list. The layer
functions here are also the exit loop's (:mod:`.exit`).
"""
from __future__ import annotations

import contextlib
import types
from typing import Iterator, Optional, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

MASK_VALUE = -1e4
"""Additive attention-mask value at padding, PaddleNLP's convention."""


def extended_attention_mask(input_ids: paddle.Tensor, pad_token_id: int,
                            attention_mask: Optional[paddle.Tensor] = None) -> paddle.Tensor:
    """Additive mask ``[batch, 1, 1, seq]``: 0 where attended, ``MASK_VALUE`` at padding.

    ``attention_mask`` may be None (padding is read from ``input_ids``), a
    ``[batch, seq]`` 0/1 mask (1 keeps a token), or an already additive mask.
    """
    if attention_mask is None:
        pad = (input_ids == pad_token_id).astype("float32")  # [batch, seq]
        return paddle.unsqueeze(pad * MASK_VALUE, axis=[1, 2])
    if attention_mask.ndim == 2:
        return paddle.unsqueeze((1.0 - attention_mask.astype("float32")) * MASK_VALUE, axis=[1, 2])
    return attention_mask


def self_attention(attn: nn.MultiHeadAttention, x: paddle.Tensor, mask: paddle.Tensor,
                   head_mask: Optional[paddle.Tensor] = None, query: Optional[paddle.Tensor] = None) -> paddle.Tensor:
    """Multi-head self-attention of ``x`` ``[batch, seq, hidden]`` with an optional per-head mask.

    ``head_mask`` ``[num_heads]`` multiplies each head's attention probabilities
    (1 keeps a head). The number of heads is ``q_proj``'s output width divided by
    ``head_dim``: a supernet at width 0.5 runs the first half of the heads.
    ``query`` ``[batch, queries, hidden]`` (default ``x``) computes only those
    positions' outputs, against every position of ``x``.
    """
    query = x if query is None else query
    q, k, v = attn.q_proj(query), attn.k_proj(x), attn.v_proj(x)  # [batch, seq, heads * head_dim]
    head_dim = attn.head_dim
    heads = q.shape[-1] // head_dim
    # reshape's 0 copies a dimension: no shape operators in an exported program (no batch here is ever empty)
    q = q.reshape([0, 0, heads, head_dim]).transpose([0, 2, 1, 3])  # [batch, heads, queries, head_dim]
    k = k.reshape([0, 0, heads, head_dim]).transpose([0, 2, 1, 3])  # [batch, heads, seq, head_dim]
    v = v.reshape([0, 0, heads, head_dim]).transpose([0, 2, 1, 3])
    scores = paddle.matmul(q * head_dim ** -0.5, k, transpose_y=True) + mask  # [batch, heads, queries, seq]
    probs = F.softmax(scores, axis=-1)
    if attn.dropout and attn.training:  # in eval no dropout op at all: it would still run in an exported program
        probs = F.dropout(probs, attn.dropout, training=True, mode="upscale_in_train")
    if head_mask is not None:
        if head_mask.shape[0] < heads:
            raise ValueError(f"head_mask has {head_mask.shape[0]} entries for a layer with {heads} heads")
        probs = probs * head_mask[:heads].reshape([1, heads, 1, 1])
    context = paddle.matmul(probs, v).transpose([0, 2, 1, 3]).reshape([0, 0, heads * head_dim])
    return attn.out_proj(context)


def encoder_layer_forward(self: nn.TransformerEncoderLayer, src: paddle.Tensor, src_mask: paddle.Tensor,
                          head_mask: Optional[paddle.Tensor] = None) -> paddle.Tensor:
    """One Transformer encoder layer ``[batch, seq, hidden] -> [batch, seq, hidden]`` with a head mask."""
    residual = src
    if self.normalize_before:
        src = self.norm1(src)
    src = residual + dropout(self.dropout1, self_attention(self.self_attn, src, src_mask, head_mask))
    if not self.normalize_before:
        src = self.norm1(src)
    residual = src
    if self.normalize_before:
        src = self.norm2(src)
    src = residual + dropout(self.dropout2, self.linear2(dropout(self.dropout, self.activation(self.linear1(src)))))
    if not self.normalize_before:
        src = self.norm2(src)
    return src


def dropout(layer: nn.Dropout, x: paddle.Tensor) -> paddle.Tensor:
    """``layer(x)`` while training; ``x`` itself in eval, so that an exported program holds no dropout op (Paddle
    Inference runs an eval-mode dropout as a copy)."""
    return layer(x) if layer.training else x


def embeddings_forward(embeddings: nn.Layer, input_ids: paddle.Tensor,
                       token_type_ids: Optional[paddle.Tensor] = None) -> paddle.Tensor:
    """PaddleNLP's ``BertEmbeddings.forward`` ``[batch, seq] -> [batch, seq, hidden]`` for inputs without padding on
    the left (as ours are), with fewer operators: positions ``0..seq-1`` from one ``arange``, no dropout op in eval."""
    positions = paddle.arange(paddle.shape(input_ids)[1], dtype="int64").unsqueeze(0)  # [1, seq]
    hidden = embeddings.word_embeddings(input_ids) + embeddings.position_embeddings(positions)
    if token_type_ids is None:
        token_type_ids = paddle.zeros_like(input_ids)
    hidden = hidden + embeddings.token_type_embeddings(token_type_ids)
    return dropout(embeddings.dropout, embeddings.layer_norm(hidden))


def per_layer_head_mask(head_mask: Optional[paddle.Tensor], num_layers: int, num_heads: int) -> Optional[paddle.Tensor]:
    """``head_mask`` as ``[num_layers, num_heads]``; a ``[num_heads]`` mask applies to every layer."""
    if head_mask is None:
        return None
    if head_mask.ndim == 1 and head_mask.shape[0] == num_heads:
        return head_mask.unsqueeze(0).expand([num_layers, num_heads])
    if head_mask.ndim == 2 and tuple(head_mask.shape) == (num_layers, num_heads):
        return head_mask
    raise ValueError(f"head_mask has shape {list(head_mask.shape)}; expected [{num_layers}, {num_heads}] or [{num_heads}]")


def bert_forward(self, input_ids: paddle.Tensor, token_type_ids: Optional[paddle.Tensor] = None,
                 position_ids: Optional[paddle.Tensor] = None, attention_mask: Optional[paddle.Tensor] = None,
                 head_mask: Optional[paddle.Tensor] = None) -> Tuple[paddle.Tensor, paddle.Tensor]:
    """``BertModel`` forward with ``head_mask``; returns ``(sequence_output [batch, seq, hidden], pooled [batch, hidden])``."""
    mask = extended_attention_mask(input_ids, self.pad_token_id, attention_mask)  # [batch, 1, 1, seq]
    hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids)
    layers = self.encoder.layers
    head_mask = per_layer_head_mask(head_mask, len(layers), layers[0].self_attn.num_heads)
    for i, layer in enumerate(layers):
        hidden = layer(hidden, mask, None if head_mask is None else head_mask[i])
    if self.encoder.norm is not None:
        hidden = self.encoder.norm(hidden)
    return hidden, self.pooler(hidden)


def classifier_forward(self, input_ids: paddle.Tensor, token_type_ids: Optional[paddle.Tensor] = None,
                       position_ids: Optional[paddle.Tensor] = None, attention_mask: Optional[paddle.Tensor] = None,
                       head_mask: Optional[paddle.Tensor] = None) -> paddle.Tensor:
    """``BertForSequenceClassification`` forward with ``head_mask``; returns logits ``[batch, num_labels]``."""
    _, pooled = self.bert(input_ids, token_type_ids=token_type_ids, position_ids=position_ids,
                          attention_mask=attention_mask, head_mask=head_mask)
    return self.classifier(self.dropout(pooled))


_MISSING = object()


@contextlib.contextmanager
def head_mask_forward(model: nn.Layer) -> Iterator[nn.Layer]:
    """Within the block, ``model(input_ids, ..., head_mask=...)`` works; afterwards ``model`` is as before.

    Patches the ``forward`` of this instance only: every ``BertModel`` inside it
    (:func:`bert_forward`), their encoder layers (:func:`encoder_layer_forward`)
    and, for a ``BertForSequenceClassification``, the model itself
    (:func:`classifier_forward`). Other instances of the same classes are
    untouched. Restores in ``finally``, so an exception inside the block leaves
    the model as it was. Raises ``TypeError`` if ``model`` holds no ``BertModel``.
    """
    # here, not at the top: the exported side (exit loop, branches) runs without PaddleNLP (a serving install)
    from paddlenlp.transformers import BertForSequenceClassification, BertModel

    berts = [layer for layer in model.sublayers(include_self=True) if isinstance(layer, BertModel)]
    if not berts:
        raise TypeError(f"head_mask_forward found no PaddleNLP BertModel inside {type(model).__name__}")
    patches = []
    for bert in berts:
        patches.append((bert, bert_forward))
        patches.extend((layer, encoder_layer_forward) for layer in bert.encoder.layers)
    patches.extend((layer, classifier_forward) for layer in model.sublayers(include_self=True)
                   if isinstance(layer, BertForSequenceClassification))
    saved = []
    try:
        for layer, function in patches:
            saved.append((layer, layer.__dict__.get("forward", _MISSING)))
            object.__setattr__(layer, "forward", types.MethodType(function, layer))
        yield model
    finally:
        for layer, previous in reversed(saved):
            if previous is _MISSING:
                object.__delattr__(layer, "forward")
            else:
                object.__setattr__(layer, "forward", previous)


class Probabilities(nn.Layer):
    """A ``BertForSequenceClassification`` (or narrow sub-model) returning softmax probabilities
    ``[batch, num_labels]``: PaddleNLP's forward, through the functions above (no dropout operator in eval), the
    exported baseline without exits."""

    def __init__(self, classifier: nn.Layer):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: paddle.Tensor, token_type_ids: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        model = self.classifier
        bert = model.bert
        mask = extended_attention_mask(input_ids, bert.pad_token_id)  # [batch, 1, 1, seq]
        hidden = embeddings_forward(bert.embeddings, input_ids, token_type_ids)  # [batch, seq, hidden]
        for layer in bert.encoder.layers:
            hidden = encoder_layer_forward(layer, hidden, mask)
        if bert.encoder.norm is not None:
            hidden = bert.encoder.norm(hidden)
        logits = model.classifier(dropout(model.dropout, bert.pooler(hidden)))  # [batch, num_labels]
        return F.softmax(logits, axis=-1)
