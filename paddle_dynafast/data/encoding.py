"""Tokenising examples into model inputs, and a character vocabulary for models trained from scratch."""
from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

from .labels import label_ids
from .readers import Example

logger = logging.getLogger(__name__)


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


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
    ``truncation="longest_first"`` does (so a deployment that calls the tokenizer gets the same ids). Truncation is
    counted, and logged unless ``quiet``."""
    ids = label_ids(examples, labels) if labels is not None else [-1] * len(examples)
    features, truncated = [], 0
    for example, label in zip(examples, ids):
        a = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(example.text_a))
        b = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(example.text_b)) if example.text_b else None
        budget = max_seq_len - tokenizer.num_special_tokens_to_add(pair=b is not None)
        cut = len(a) + (len(b) if b else 0) > budget
        while len(a) + (len(b) if b else 0) > budget:
            if b and len(b) >= len(a):
                b.pop()
            else:
                a.pop()
        truncated += cut
        features.append(Features(
            input_ids=tokenizer.build_inputs_with_special_tokens(a, b),
            token_type_ids=tokenizer.create_token_type_ids_from_sequences(a, b),
            label=label,
            truncated=cut,
        ))
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
    basic = BasicTokenizer(do_lower_case=True)
    counts: Counter = Counter()
    for text in texts:
        for word in basic.tokenize(text):
            counts[word[0]] += 1
            counts.update("##" + c for c in word[1:])
    kept = sorted((t for t, n in counts.items() if n >= min_count and unicodedata.category(t[-1])[0] != "C"),
                  key=lambda t: (-counts[t], t))
    return list(SPECIAL_TOKENS) + [t for t in kept if t not in SPECIAL_TOKENS]
