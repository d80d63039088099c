"""Tokenising examples into model inputs, and a character vocabulary for models trained from scratch.

Every path tokenises here, with :class:`~paddle_dynafast.data.wordpiece.WordPiece` (PaddleNLP's ``BertTokenizer``
ids from the Rust ``tokenizers``; a ``BertTokenizer`` given is turned into one)."""
from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

from .labels import label_ids
from .readers import Example
from .wordpiece import SPECIAL_TOKENS, WordPiece

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class Features:
    input_ids: List[int]
    token_type_ids: List[int]
    label: int
    """Label id, or -1 for unlabelled text."""
    truncated: bool


def encode(examples: Sequence[Example], tokenizer, max_seq_len: int,
           labels: Optional[Sequence[str]] = None, quiet: bool = False) -> List[Features]:
    """Tokenise with [CLS] a [SEP] (b [SEP]); pairs are truncated longest-first, a tie from b, as the tokenizer's
    ``truncation="longest_first"`` does (so a deployment that calls the tokenizer gets the same ids). ``tokenizer`` is
    a :class:`~paddle_dynafast.data.wordpiece.WordPiece` or PaddleNLP's ``BertTokenizer`` (the same ids). Truncation
    is counted, and logged unless ``quiet``."""
    wordpiece = WordPiece.of(tokenizer)
    cls, sep = wordpiece.cls_token_id, wordpiece.sep_token_id
    ids = label_ids(examples, labels) if labels is not None else [-1] * len(examples)
    firsts = wordpiece.ids([e.text_a for e in examples])
    paired = [i for i, e in enumerate(examples) if e.text_b]
    seconds = dict(zip(paired, wordpiece.ids([examples[i].text_b for i in paired])))
    features, truncated = [], 0
    for i, (a, label) in enumerate(zip(firsts, ids)):
        b = seconds.get(i)
        if b is None:
            cut = len(a) > max_seq_len - 2
            a = a[:max_seq_len - 2]
            input_ids, token_type_ids = [cls, *a, sep], [0] * (len(a) + 2)
        else:
            budget = max_seq_len - 3
            cut = len(a) + len(b) > budget
            while len(a) + len(b) > budget:
                if len(b) >= len(a):
                    b.pop()
                else:
                    a.pop()
            input_ids, token_type_ids = [cls, *a, sep, *b, sep], [0] * (len(a) + 2) + [1] * (len(b) + 1)
        truncated += cut
        features.append(Features(input_ids=input_ids, token_type_ids=token_type_ids, label=label, truncated=cut))
    if truncated and not quiet:
        logger.info("truncated %d of %d examples to max_seq_len %d", truncated, len(features), max_seq_len)
    return features


def _is_cjk(char: str) -> bool:
    cp = ord(char)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def build_char_vocab(texts: Iterable[str], min_count: int = 1) -> List[str]:
    """A WordPiece vocabulary of single characters for :class:`BertTokenizer`.

    CJK characters become tokens of their own; other words are split into their
    first character and ``##``-continuations, exactly as WordPiece looks them up.
    Characters seen fewer than ``min_count`` times map to [UNK].
    """
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer  # training only: a serving install has no PaddleNLP

    basic = BasicTokenizer(do_lower_case=True)
    counts: Counter = Counter()
    for text in texts:
        for word in basic.tokenize(text):
            counts[word[0]] += 1
            counts.update("##" + c for c in word[1:])
    kept = sorted((t for t, n in counts.items() if n >= min_count and unicodedata.category(t[-1])[0] != "C"),
                  key=lambda t: (-counts[t], t))
    return list(SPECIAL_TOKENS) + [t for t in kept if t not in SPECIAL_TOKENS]
