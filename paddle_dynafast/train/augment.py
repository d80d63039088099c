"""More distillation data: word substitution from the teacher's own word-embedding neighbours.

TinyBERT (arXiv 1909.10351, section 3.1, "data augmentation"), whose augmented
GLUE data DynaBERT (arXiv 2004.04037, section 4.1) trains on, makes ``N``
copies of every training sentence and replaces each word with probability
``p_t`` by one of ``K`` candidates: the masked-language model's predictions for
a single-wordpiece word, GloVe neighbours for the others (``N = 20``,
``p_t = 0.4``, ``K = 15``). Our MiniLM has no MLM head and no GloVe comes with
it, so here the candidates of a wordpiece are its ``K`` nearest wordpieces by
cosine similarity in the teacher's own input word-embedding table, and:

* only words of a single wordpiece are replaced (not special tokens, not
  punctuation, not words split into ``##`` continuations), and only by such
  wordpieces, so a copy has exactly the original's token count;
* augmented copies carry no label (-1): a neighbour may flip the meaning
  (``good`` and ``bad`` are close), so they serve distillation, which needs
  none, and not label training;
* the substitution works on token ids after tokenising, seeded, and the
  neighbours are computed once, only for the wordpieces that occur
  (:func:`nearest_neighbours`, in chunks of a NumPy matrix product).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Dict, Iterable, List, Sequence

import numpy as np

from ..config import AugmentConfig
from ..data.encoding import Features

logger = logging.getLogger(__name__)


def replaceable(tokens: Sequence[str], special_ids: Iterable[int]) -> np.ndarray:
    """``[vocab]`` bool: the wordpieces that are whole words of letters or digits (not special, not ``##``, not
    ``[unused]``-style entries, not punctuation)."""
    special = set(int(i) for i in special_ids)
    out = np.zeros(len(tokens), dtype=bool)
    for i, token in enumerate(tokens):
        out[i] = (i not in special and not token.startswith("##") and not (token.startswith("[") and token.endswith("]"))
                  and any(c.isalnum() for c in token))
    return out


def nearest_neighbours(embeddings: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int,
                       chunk: int = 512) -> np.ndarray:
    """``[queries, k]``: for each query id, the ``k`` candidate ids with the highest cosine similarity of their rows
    of ``embeddings`` ``[vocab, hidden]``, most similar first, the query itself excluded."""
    if len(candidates) < k + 1:
        raise ValueError(f"{len(candidates)} candidate wordpieces are too few for {k} neighbours")
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    unit = unit.astype("float32")
    target = unit[candidates]  # [candidates, hidden]
    out = np.empty((len(queries), k), dtype="int64")
    for start in range(0, len(queries), chunk):
        ids = queries[start:start + chunk]
        sims = unit[ids] @ target.T  # [chunk, candidates]
        sims[candidates[None, :] == ids[:, None]] = -np.inf  # never the word itself
        top = np.argpartition(-sims, k, axis=1)[:, :k]  # [chunk, k], unordered
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[start:start + len(ids)] = candidates[np.take_along_axis(top, order, axis=1)]
    return out


def word_positions(input_ids: Sequence[int], allowed: np.ndarray, continuation: np.ndarray) -> np.ndarray:
    """Positions of ``input_ids`` holding a replaceable wordpiece that is a whole word (the next piece does not
    continue it)."""
    ids = np.asarray(input_ids)
    whole = allowed[ids].copy()
    whole[:-1] &= ~continuation[ids[1:]]
    return np.flatnonzero(whole)


class Augmenter:
    """Word substitution on encoded features; the neighbours of every wordpiece that occurs are computed once."""

    def __init__(self, embeddings: np.ndarray, tokens: Sequence[str], special_ids: Iterable[int],
                 config: AugmentConfig):
        self.config = config
        self.allowed = replaceable(tokens, special_ids)
        self.continuation = np.array([t.startswith("##") for t in tokens])
        self.embeddings = np.asarray(embeddings)
        if len(self.embeddings) != len(tokens):
            raise ValueError(f"{len(self.embeddings)} embedding rows for a vocabulary of {len(tokens)} tokens")
        self.neighbours: Dict[int, np.ndarray] = {}

    def prepare(self, features: Sequence[Features]) -> None:
        """Compute the neighbours of every replaceable wordpiece in ``features`` not seen before."""
        seen = {int(i) for f in features for i in f.input_ids if self.allowed[i]}
        queries = np.array(sorted(seen - set(self.neighbours)), dtype="int64")
        if len(queries):
            table = nearest_neighbours(self.embeddings, queries, np.flatnonzero(self.allowed), self.config.neighbours)
            self.neighbours.update(zip(queries.tolist(), table))

    def __call__(self, features: Sequence[Features], seed: int) -> List[Features]:
        """``config.copies`` augmented copies of every feature (label -1), in order: all copies of the first, ..."""
        self.prepare(features)
        rng = np.random.default_rng(seed)
        out, unchanged = [], 0
        for f in features:
            positions = word_positions(f.input_ids, self.allowed, self.continuation)
            for _ in range(self.config.copies):
                ids = list(f.input_ids)
                chosen = positions[rng.random(len(positions)) < self.config.probability]
                picks = rng.integers(0, self.config.neighbours, size=len(chosen))
                for position, pick in zip(chosen, picks):
                    ids[position] = int(self.neighbours[ids[position]][pick])
                unchanged += not len(chosen)
                out.append(replace(f, input_ids=ids, label=-1))
        if out:
            logger.info("augmented %d texts into %d copies (%d with no word replaced)", len(features), len(out),
                        unchanged)
        return out


def augment_features(features: Sequence[Features], model, tokenizer, config: AugmentConfig,
                     seed: int) -> List[Features]:
    """``config.copies`` augmented copies of ``features`` (none when ``copies`` is 0), from ``model``'s input word
    embeddings (a PaddleNLP BERT classifier) and ``tokenizer``'s vocabulary."""
    if not config.copies:
        return []
    embeddings = model.bert.embeddings.word_embeddings.weight.numpy()
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(embeddings))))
    return Augmenter(embeddings, tokens, tokenizer.all_special_ids, config)(features, seed)


def add_augment_arguments(parser) -> None:
    """The ``--augment-*`` flags of the stages that distil (``supernet``, ``distill``)."""
    a = AugmentConfig()
    parser.add_argument("--augment-copies", type=int, default=a.copies,
                        help=f"augmented copies of every training text, by word substitution from the model's own "
                             f"embedding neighbours; no labels (default {a.copies}: off)")
    parser.add_argument("--augment-probability", type=float, default=a.probability,
                        help=f"chance each whole word is replaced (default {a.probability})")
    parser.add_argument("--augment-neighbours", type=int, default=a.neighbours,
                        help=f"a replaced word becomes one of its this many nearest wordpieces (default {a.neighbours})")


def augment_from_args(args) -> AugmentConfig:
    return AugmentConfig(copies=args.augment_copies, probability=args.augment_probability,
                         neighbours=args.augment_neighbours)
