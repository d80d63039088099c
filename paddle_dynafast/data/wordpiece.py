"""Token ids as PaddleNLP's ``BertTokenizer`` gives them, computed by the Rust WordPiece of Hugging Face ``tokenizers``.

PaddleNLP's tokenizer is plain Python (about 2 000 to 4 000 texts/s on one core here); the same ids from
``tokenizers`` come 4 to 6 times faster, without importing PaddleNLP (a serving install has no PaddleNLP). It is
the one tokenizer every path uses (:func:`~paddle_dynafast.data.encoding.encode`: training, predict, bench, serve);
PaddleNLP's ``BertTokenizer`` is only what a model directory's tokenizer files are written with, and the reference
the tests compare against on every text of every data set.

What ``BertTokenizer.tokenize`` does, and how it is rebuilt here:

* a special token written in the text as a word of its own (``[SEP]``, exactly so, between whitespace once the
  text is cleaned) stays one token; anywhere else it is text like any other (``x[SEP]`` gives ``x [ sep ]``). The
  few texts that hold one are split into words here and the special words put back between the pieces;
* its basic tokenizer drops NUL, U+FFFD and control characters, turns whitespace into spaces, puts spaces around
  CJK ideographs, lower-cases and strips accents (with ``do_lower_case``): ``BertNormalizer``;
* it splits on whitespace, then isolates every punctuation character **and every symbol** (Unicode categories P*
  and S*, ASCII non-alphanumerics, and eight code points PaddleNLP adds): not ``BertPreTokenizer``, which splits
  on punctuation only (``★★`` and ``～`` would stay words there and become ``[UNK]``); a whitespace split and a
  regular expression of PaddleNLP's classes instead;
* greedy longest-match WordPiece with ``##`` continuations, a word longer than 100 characters is ``[UNK]``:
  ``models.WordPiece``.

The vocabulary is read as PaddleNLP reads it (:func:`read_vocabulary`): one token per line in text mode (only the
line end stripped), a token that repeats keeps its last line's id.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

from .. import files
from ..errors import ArtifactError, MissingFileError

VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""BertTokenizer's special tokens (every vocabulary of ours has them, in this order, first)."""
REQUIRED_TOKENS = SPECIAL_TOKENS[:4]
"""The tokens every vocabulary must hold: padding, unknown words, and a text's start and separator (without
``[MASK]``, a ``[MASK]`` in a text is ``[UNK]``, as PaddleNLP gives it)."""

MAX_WORD_CHARS = 100
"""A longer word is ``[UNK]`` (BertTokenizer's ``max_input_chars_per_word``)."""

_EXTRA_SYMBOLS = "\u00ad\u00b2\u00ba\u3007\u00b5\u00d8\u014b\u01b1"
"""Code points PaddleNLP's ``_is_symbol`` counts as symbols beyond the S* categories."""

SPLIT_PATTERN = r"[\p{P}\p{S}\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e" + _EXTRA_SYMBOLS + "]"
"""One character that PaddleNLP's basic tokenizer makes a token of its own: punctuation, symbols and ASCII
non-alphanumerics (``_is_punctuation`` or ``_is_symbol``)."""

def read_vocabulary(path: str | Path) -> List[str]:
    """The tokens of a ``vocab.txt`` (one a line, as PaddleNLP reads them); an empty file, bytes that are not UTF-8
    or a missing special token (:data:`REQUIRED_TOKENS`) is an :class:`ArtifactError` naming the file."""
    text = files.read_text(path)
    tokens = [line.rstrip("\n") for line in io.StringIO(text, newline=None)]
    if not any(token.strip() for token in tokens):
        raise ArtifactError(f"{path} is empty: a vocabulary holds one token a line")
    present = set(tokens)
    missing = [token for token in REQUIRED_TOKENS if token not in present]
    if missing:
        raise ArtifactError(f"{path} has no {' or '.join(missing)}: not a BERT vocabulary (one token a line, the "
                            f"special tokens {', '.join(REQUIRED_TOKENS)} among them)")
    return tokens


_SPECIAL = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


class WordPiece:
    """``BertTokenizer``'s ids of texts, from ``tokenizers`` (see the module docstring).

    ``vocab`` maps token to id; ``do_lower_case`` as BertTokenizer's (accents are stripped with it). ``source``
    names where the vocabulary came from, for errors."""

    def __init__(self, vocab: Mapping[str, int], do_lower_case: bool = True, source: str = "the vocabulary"):
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

        missing = [t for t in REQUIRED_TOKENS if t not in vocab]
        if missing:
            raise ArtifactError(f"{source} has no {' or '.join(missing)}: not a BERT vocabulary (one token a line, "
                                f"the special tokens {', '.join(REQUIRED_TOKENS)} among them)")
        self.vocab: Dict[str, int] = dict(vocab)
        self.do_lower_case = do_lower_case
        self.source = source
        self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = (
            self.vocab.get(t, self.vocab["[UNK]"]) for t in SPECIAL_TOKENS)
        tokenizer = Tokenizer(models.WordPiece(self.vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_WORD_CHARS))
        tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                          strip_accents=None, lowercase=do_lower_case)
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated")])
        self._tokenizer = tokenizer
        self._clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                 lowercase=False)

    @classmethod
    def from_file(cls, vocab_file: str | Path, do_lower_case: bool = True) -> "WordPiece":
        """The tokenizer of a ``vocab.txt``."""
        tokens = read_vocabulary(vocab_file)
        return cls({token: i for i, token in enumerate(tokens)}, do_lower_case, str(vocab_file))

    @classmethod
    def from_dir(cls, directory: str | Path) -> "WordPiece":
        """The tokenizer of a model or export directory: its ``vocab.txt``, lower-casing from its
        ``tokenizer_config.json`` (as :func:`paddle_dynafast.model.loading.load_tokenizer` reads them)."""
        directory = Path(directory)
        if not (directory / VOCAB_FILE).is_file():
            raise MissingFileError(f"{directory} has no {VOCAB_FILE}")
        return cls.from_file(directory / VOCAB_FILE, do_lower_case(directory))

    @classmethod
    def of(cls, tokenizer) -> "WordPiece":
        """``tokenizer`` itself, or the WordPiece of a PaddleNLP ``BertTokenizer`` (its vocabulary and lower-casing;
        built once per tokenizer object and kept on it)."""
        if isinstance(tokenizer, WordPiece):
            return tokenizer
        built = getattr(tokenizer, "_paddle_dynafast_wordpiece", None)
        if built is None:
            built = cls(dict(tokenizer.vocab.token_to_idx), bool(tokenizer.do_lower_case), type(tokenizer).__name__)
            tokenizer._paddle_dynafast_wordpiece = built
        return built

    def ids(self, texts: Sequence[str]) -> List[List[int]]:
        """The token ids of each text, without [CLS] and [SEP] (``convert_tokens_to_ids(tokenize(text))``)."""
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        for i, text in enumerate(texts):
            if _SPECIAL.search(text):
                ids[i] = [self.vocab.get(t, self.unk_token_id) for t in self.tokenize(text)]
        return ids

    def tokenize(self, text: str) -> List[str]:
        """The tokens of ``text`` (``BertTokenizer.tokenize``)."""
        if not _SPECIAL.search(text):
            return self._tokenizer.encode(text, add_special_tokens=False).tokens
        tokens: List[str] = []
        run: List[str] = []  # words between special ones
        for word in self._clean.normalize_str(text).split() + [SPECIAL_TOKENS[0]]:
            if word in SPECIAL_TOKENS:
                if run:
                    tokens += self._tokenizer.encode(" ".join(run), add_special_tokens=False).tokens
                    run = []
                tokens.append(word)
            else:
                run.append(word)
        return tokens[:-1]

    def __len__(self) -> int:
        return len(self.vocab)


def do_lower_case(directory: str | Path, default: bool = True) -> bool:
    """``do_lower_case`` of a directory's ``tokenizer_config.json`` (``default`` without one)."""
    config = Path(directory) / TOKENIZER_CONFIG
    if not config.is_file():
        return default
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{config} is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ArtifactError(f"{config} is not a JSON object")
    return bool(raw.get("do_lower_case", default))
