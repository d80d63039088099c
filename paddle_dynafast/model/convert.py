"""Hugging Face BERT directories read as PaddleNLP's ``BertForSequenceClassification``, in NumPy (no PyTorch).

A name map, a transpose of every 2-D Linear weight, LayerNorm epsilon from the
config; every source weight is used exactly once, or the error names the key.
:func:`detect_format` tells the two directory formats apart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
from paddlenlp.transformers import BertConfig
from safetensors import SafetensorError, safe_open

from .. import files
from ..errors import CheckpointError, MissingFileError
from .weights import PICKLE_WEIGHTS, SAFE_WEIGHTS

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


def detect_format(model_dir: str | Path) -> str:
    """``paddlenlp`` or ``huggingface``, from the files of ``model_dir`` and the names of its weights.

    Both formats may hold ``model.safetensors``: Hugging Face names a layer ``encoder.layer.0.attention.self.query``,
    PaddleNLP (and paddle_dynafast) ``bert.encoder.layers.0.self_attn.q_proj``. A directory with only
    ``model_state.pdparams`` is PaddleNLP's (a pickle: :func:`load_classifier` reads it only when trusted).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise MissingFileError(f"model directory {model_dir} does not exist")
    if not files.exists(model_dir / "config.json"):
        raise MissingFileError(f"{model_dir} has no config.json")
    files.check_regular(model_dir / "config.json")
    safetensors = model_dir / SAFE_WEIGHTS
    if files.exists(safetensors):
        files.check_regular(safetensors)
        try:
            with safe_open(str(safetensors), framework="np") as f:
                keys = list(f.keys())
        except SafetensorError as error:
            raise CheckpointError(f"{safetensors} is not a readable safetensors file: {error}") from error
        return "huggingface" if any(".layer." in k or k.startswith("encoder.layer.") for k in keys) else "paddlenlp"
    if files.exists(model_dir / PICKLE_WEIGHTS):
        files.check_regular(model_dir / PICKLE_WEIGHTS)
        return "paddlenlp"
    raise MissingFileError(f"{model_dir} has neither {SAFE_WEIGHTS} nor {PICKLE_WEIGHTS}")
