"""Predictions for texts or sentence pairs on any runtime: tokenise, batch by length, run, return in input order.

A library call logs nothing per call: how many texts were truncated is in the result
(:attr:`Prediction.truncated`), for the caller to report (the ``predict`` command logs it, a server counts it)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.batching import Collator, FeatureDataset, LengthGroupedBatchSampler
from ..data.encoding import Features, encode
from ..data.readers import Example
from ..data.wordpiece import WordPiece
from ..errors import ConfigError
from ..model.exit import check_speed
from .auto import AUTO, open_runtime
from .base import Runtime


@dataclass
class Prediction:
    """Predictions for a list of texts, in input order."""

    labels: List[str]
    label_ids: np.ndarray
    """``[texts]``"""
    probs: np.ndarray
    """``[texts, num_labels]``"""
    exit_layer: np.ndarray
    """``[texts]``: layers run (all of them without the exit loop)."""
    truncated: int
    """How many texts were longer than max_seq_len and cut."""


class Predictor:
    """Texts in, labels out, on ``source``: a :class:`~paddle_dynafast.runtime.base.Runtime`, or a directory
    opened with :func:`~paddle_dynafast.runtime.auto.open_runtime` (``runtime`` and ``options``; by default
    ``auto``: the fastest runtime on this machine for the export, measured once and remembered, on 2 threads)."""

    def __init__(self, source: Union[str, Path, Runtime], runtime: str = AUTO, threads: int = 2,
                 **options):
        self.runtime = source if isinstance(source, Runtime) else open_runtime(source, runtime, threads, **options)
        self.info = self.runtime.info
        self.tokenizer = WordPiece.from_dir(self.info.directory)
        self.labels = list(self.info.labels)

    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        """One batch ``[batch, seq]`` through the runtime; returns ``(probs, exit_layer)``."""
        return self.runtime.run_batch(input_ids, token_type_ids, speed)

    def encode(self, texts: Sequence[str], text_b: Optional[Sequence[str]] = None):
        """Token ids per text, or per pair ``(texts[i], text_b[i])`` (``token_type_ids`` 1 on the second text), and
        how many were truncated (not logged); an empty or non-string text is an error naming its index."""
        check_texts(texts, "text")
        if text_b is not None:
            check_texts(text_b, "text_b")
            if len(text_b) != len(texts):
                raise ConfigError(f"{len(text_b)} text_b for {len(texts)} texts: give one second text per text")
        examples = [Example(t, None if text_b is None else text_b[i], None, f"text {i}") for i, t in enumerate(texts)]
        features = encode(examples, self.tokenizer, self.info.max_seq_len, quiet=True)
        return features, sum(f.truncated for f in features)

    def predict(self, texts: Sequence[str], speed: float = 0.0, batch_size: int = 32,
                text_b: Optional[Sequence[str]] = None) -> Prediction:
        """Labels, probabilities and exit layers of ``texts`` (sentence pairs with ``text_b``, one second text per
        text), and how many were truncated; batches are grouped by length."""
        check_speed(speed)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        features, _ = self.encode(texts, text_b)
        return self.run_features(features, speed, batch_size)

    def run_features(self, features: Sequence[Features], speed: float = 0.0, batch_size: int = 32) -> Prediction:
        """:meth:`predict` on texts :meth:`encode` has tokenised."""
        dataset = FeatureDataset(features)
        collate = Collator(self.tokenizer.pad_token_id)
        probs = np.zeros((len(features), len(self.labels)), dtype="float32")
        exit_layer = np.zeros(len(features), dtype="int64")
        for rows in LengthGroupedBatchSampler(dataset.lengths, batch_size, shuffle=False):
            batch = collate([dataset[i] for i in rows])  # input_ids, token_type_ids [batch, seq]
            p, e = self.run_batch(batch["input_ids"], batch["token_type_ids"], speed)
            probs[batch["index"]], exit_layer[batch["index"]] = p, e
        ids = probs.argmax(-1)
        return Prediction([self.labels[i] for i in ids], ids, probs, exit_layer, sum(f.truncated for f in features))


def check_texts(texts: Sequence[str], name: str = "text") -> None:
    """A non-empty list of non-empty strings; the error names the first bad index (``text 3 is empty``)."""
    if isinstance(texts, str):
        raise ConfigError(f"{name}s must be a list of strings, not one string")
    if len(texts) == 0:
        raise ConfigError("no texts to predict")
    wrong = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if wrong:
        raise ConfigError(f"{name} {wrong[0]} is not a string but {type(texts[wrong[0]]).__name__}")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ConfigError(f"{name} {empty[0]} is empty ({len(empty)} empty {name}(s) in all)")
