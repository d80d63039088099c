"""Reading, tokenising and batching text-classification data.

Two file formats (``../shared/data/README.md``):

* ``.txt``: one example a line, ``LABEL TEXT`` (the label, one space, the text);
* ``.tsv``: a header with ``label`` and ``text_a`` (and optionally ``text_b`` for
  sentence pairs), read with quoting disabled.

A ``.txt`` file whose first label is followed by a tab is read as
``LABEL<TAB>TEXT`` lines, and logged as tab-separated. A UTF-8 byte-order mark
(BOM) at the start of a file is removed and logged.

Bad input is a :class:`DataError` naming the file and line. Nothing is dropped
silently: truncation and skipped blank lines are counted and logged. The label
set of a training split is refused when a label looks like a typo (rare, or not
a whole number among whole numbers) unless it is given explicitly
(:func:`training_labels`).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import paddle
from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

from .config import DataConfig
from .errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
MIN_LABEL_COUNT = 5
"""A training label seen fewer times than this, and ten times less often than the commonest, looks like a typo."""
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: Optional[str]
    label: Optional[str]
    where: str
    """``file:line`` of the example, for error messages."""


@dataclass(frozen=True)
class Features:
    input_ids: List[int]
    token_type_ids: List[int]
    label: int
    """Label id, or -1 for unlabelled text."""
    truncated: bool


# ----------------------------------------------------------------------------- reading


def read_examples(path: str | Path, strict: bool = False) -> List[Example]:
    """Read one split file in either format (chosen by the file's ending). ``strict``: bytes that are not UTF-8
    are an error naming the line (else they are replaced and logged)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".tsv":
        examples = _read_tsv(path, strict)
    elif path.suffix == ".txt":
        examples = _read_label_text(path, strict)
    else:
        raise DataError(f"{path}: unknown format {path.suffix!r}; expected .txt (LABEL TEXT) or .tsv")
    if not examples:
        raise DataError(f"{path}: empty file, no examples")
    return examples


def decode_lines(raw_lines: Iterable[bytes], where: str, strict: bool = False) -> Iterator[str]:
    """The lines of a byte stream decoded as UTF-8, without their line ends; a BOM at the start is removed and
    logged. A line that is not UTF-8 is a :class:`DataError` naming ``where``, the line and the byte offset
    (``strict``), or has its bad bytes replaced by U+FFFD, counted and logged by line."""
    bad, offset = [], 0
    for number, raw in enumerate(raw_lines, start=1):
        start = offset
        offset += len(raw)
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
            start += len(codecs.BOM_UTF8)
            logger.warning("%s starts with a UTF-8 byte-order mark (BOM); it was removed", where)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if strict:
                raise DataError(f"{where}:{number}: not valid UTF-8 at byte offset {start + error.start} (byte "
                                f"{error.start + 1} of the line: {raw[error.start:error.start + 1]!r})") from None
            line = raw.decode("utf-8", errors="replace")
            bad.append(number)
        yield line.rstrip("\r\n")
    if bad:
        logger.warning("%s: %d line(s) are not valid UTF-8 (lines %s); their bad bytes were replaced by U+FFFD",
                       where, len(bad), ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else ""))


def read_lines(source: str | Path | BinaryIO, where: Optional[str] = None, strict: bool = True) -> List[str]:
    """Every line of a file (a path) or a binary stream (standard input's ``buffer``), as :func:`decode_lines`
    gives them; strict by default."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            return list(decode_lines(f, where or str(source), strict))
    return list(decode_lines(source, where or "standard input", strict))


def _lines(path: Path, strict: bool = False) -> Iterator[str]:
    with open(path, "rb") as f:
        yield from decode_lines(f, str(path), strict)


def _read_label_text(path: Path, strict: bool = False) -> List[Example]:
    examples, separator = [], " "
    for number, line in enumerate(_lines(path, strict), start=1):
        if not line.strip():
            raise DataError(f"{path}:{number}: empty line; expected 'LABEL TEXT'")
        if number == 1 and "\t" in line.partition(" ")[0]:
            if line.partition("\t")[0].strip() == "label":
                raise DataError(f"{path}:1: a tab-separated header {line.split(chr(9))}: this is a .tsv file; "
                                f"name it {path.stem}.tsv")
            separator = "\t"
            logger.info("%s: tab-separated LABEL<TAB>TEXT lines, read with the tab as the separator", path)
        label, found, text = line.partition(separator)
        if separator == "\t" and not found:
            raise DataError(f"{path}:{number}: no tab; line 1 is tab-separated, so every line must be LABEL<TAB>TEXT")
        if "\t" in label:
            raise DataError(f"{path}:{number}: the label {label!r} holds a tab; expected 'LABEL TEXT' (one space)")
        if not text.strip():
            raise DataError(f"{path}:{number}: empty text after label {label!r}")
        examples.append(Example(text.strip(), None, label, f"{path}:{number}"))
    return examples


def _read_tsv(path: Path, strict: bool = False) -> List[Example]:
    examples = []
    reader = csv.reader(_lines(path, strict), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}: empty file, no header")
    missing = [c for c in ("label", "text_a") if c not in header]
    if missing:
        raise DataError(f"{path}:1: header {header} is missing column(s) {missing}")
    col = {name: header.index(name) for name in header}
    for number, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}:{number}: {len(row)} fields, header has {len(header)}")
        text_a = row[col["text_a"]].strip()
        text_b = row[col["text_b"]].strip() if "text_b" in col else None
        if not text_a or text_b == "":
            raise DataError(f"{path}:{number}: empty text")
        examples.append(Example(text_a, text_b, row[col["label"]].strip(), f"{path}:{number}"))
    return examples


def read_texts(path: str | Path) -> List[Example]:
    """Unlabelled raw text, one example a line; blank lines are skipped and counted."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    examples, blank = [], 0
    for number, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text:
            blank += 1
            continue
        examples.append(Example(text, None, None, f"{path}:{number}"))
    if blank:
        logger.warning("%s: skipped %d blank line(s)", path, blank)
    if not examples:
        raise DataError(f"{path}: no text lines")
    return examples


def read_json_lines(lines: Iterable[str], where: str) -> List[Example]:
    """Examples from JSON lines ``{"text": ..., "text_b": ..., "label": ...}`` (``text_b`` and ``label`` optional, other
    keys ignored); ``where`` names the source in errors. Every line must be a pair, or none."""
    examples = []
    for number, line in enumerate(lines, start=1):
        here = f"{where}:{number}"
        if not line.strip():
            raise DataError(f"{here}: empty line; expected one JSON object a line")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{here}: not valid JSON ({error})") from None
        if not isinstance(row, dict) or "text" not in row:
            keys = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise DataError(f"{here}: expected an object with a \"text\" field, got {keys}")
        for key in ("text", "text_b", "label"):
            if key in row and not isinstance(row[key], str) and not (key == "label" and isinstance(row[key], int)):
                raise DataError(f"{here}: \"{key}\" must be a string, got {type(row[key]).__name__}")
            if key in row and not str(row[key]).strip():
                raise DataError(f"{here}: \"{key}\" is empty")
        example = Example(row["text"].strip(), row["text_b"].strip() if "text_b" in row else None,
                          str(row["label"]) if "label" in row else None, here)
        pair = example.text_b is not None
        if examples and pair != (examples[0].text_b is not None):
            kinds = ("a pair", "a single text") if pair else ("a single text", "a pair")
            raise DataError(f"{here}: {kinds[0]}, but line 1 is {kinds[1]}; give \"text_b\" on every line or on none")
        examples.append(example)
    if not examples:
        raise DataError(f"{where}: no lines")
    return examples


def find_split(data_dir: str | Path, split: str) -> Optional[Path]:
    """The file of ``split`` in ``data_dir`` (``split.tsv`` or ``split.txt``), or None."""
    found = [p for p in (Path(data_dir) / f"{split}.tsv", Path(data_dir) / f"{split}.txt") if p.is_file()]
    if len(found) > 1:
        raise DataError(f"{data_dir}: both {found[0].name} and {found[1].name}; keep one")
    return found[0] if found else None


def load_splits(source: DataConfig | str | Path) -> Dict[str, List[Example]]:
    """Read train, dev and test of a :class:`~paddle_dynafast.config.DataConfig` (or of a folder, with the
    defaults); a missing dev is a held-out slice of train, chosen by ``split_seed``."""
    config = source if isinstance(source, DataConfig) else DataConfig(data_dir=str(source))
    data_dir = Path(config.data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    files = {split: find_split(data_dir, split) for split in SPLITS}
    if files["train"] is None:
        raise DataError(f"{data_dir}: no train.txt or train.tsv")
    splits = {split: read_examples(path) for split, path in files.items() if path is not None}
    if "dev" not in splits:
        n_dev = max(1, int(round(len(splits["train"]) * config.dev_fraction)))
        splits["train"], splits["dev"] = hold_out(splits["train"], n_dev, config.split_seed)
        logger.info("%s has no dev split: held out %d of %d train examples as dev (seed %d)",
                    data_dir, len(splits["dev"]), len(splits["train"]) + len(splits["dev"]), config.split_seed)
    for split, examples in splits.items():
        cap = config.max_examples if split == "train" or config.max_eval_examples is None else config.max_eval_examples
        splits[split] = examples if cap is None else examples[:cap]
    return splits


def fingerprint(examples: Sequence[Example]) -> str:
    """A short hash of which examples these are (their file and line, in order): equal for the same slice."""
    return hashlib.sha256("\n".join(e.where for e in examples).encode("utf-8")).hexdigest()[:16]


def hold_out(examples: Sequence[Example], count: int, seed: int) -> tuple:
    """``(kept, held_out)``: a seeded random ``count`` examples set aside (at most half of them)."""
    if len(examples) < 2:
        raise DataError(f"{len(examples)} example(s) are too few to hold any out")
    count = min(count, len(examples) // 2)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    return ([e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held])


# ----------------------------------------------------------------------------- labels


def _whole(label: str) -> bool:
    return label.lstrip("-").isdigit()


def label_list(examples: Sequence[Example]) -> List[str]:
    """The labels seen in ``examples``, sorted (numerically when they are all whole numbers)."""
    labels = {e.label for e in examples if e.label is not None}
    if not labels:
        raise DataError("no labelled examples")
    if all(_whole(label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def training_labels(examples: Sequence[Example], explicit: Optional[Sequence[str]] = None) -> List[str]:
    """The label set to train on, in the classifier's order.

    ``explicit`` (``--labels``) is taken as it is; a training label outside it is an
    error naming its line. Without it, the training split's labels
    (:func:`label_list`), refusing, with the line of the first example, a label
    that is not a whole number among whole numbers (``0.0`` or ``pos`` among
    ``0``/``1``, or the other way round), or one seen fewer than
    :data:`MIN_LABEL_COUNT` times and ten times less often than the commonest:
    each silently makes a class of its own otherwise.
    """
    if explicit is not None:
        explicit = list(explicit)
        outside = next((e for e in examples if e.label is not None and e.label not in explicit), None)
        if outside is not None:
            raise DataError(f"{outside.where}: label {outside.label!r} is not one of --labels {explicit}")
        unseen = [label for label in explicit if label not in {e.label for e in examples}]
        if unseen:
            logger.warning("labels %s of %s never occur in the training split", unseen, explicit)
        return explicit
    labels = label_list(examples)
    counts = Counter(e.label for e in examples if e.label is not None)
    whole = [label for label in labels if _whole(label)]
    if whole and len(whole) < len(labels):
        odd_whole = sum(counts[label] for label in whole) * 2 < sum(counts.values())
        odd = next(e for e in examples if e.label is not None and _whole(e.label) == odd_whole)
        usual = [label for label in labels if _whole(label) != odd_whole]
        raise DataError(f"{odd.where}: label {odd.label!r} is {'' if odd_whole else 'not '}a whole number, unlike the "
                        f"training labels {usual}; a typo? Pass --labels with the whole label set to train on it as "
                        "it is")
    commonest = max(counts.values())
    rare = [label for label in labels if counts[label] < MIN_LABEL_COUNT and counts[label] * 10 < commonest]
    if rare:
        odd = next(e for e in examples if e.label == rare[0])
        raise DataError(f"{odd.where}: label {odd.label!r} occurs {counts[odd.label]} time(s) in "
                        f"{sum(counts.values())} training examples, the label {counts.most_common(1)[0][0]!r} "
                        f"{commonest} times; a typo? Pass --labels with the whole label set to train on it as it is")
    return labels


def label_ids(examples: Sequence[Example], labels: Sequence[str]) -> List[int]:
    """Label ids of ``examples`` in ``labels``; an unknown label is an error naming its line."""
    index = {label: i for i, label in enumerate(labels)}
    ids = []
    for e in examples:
        if e.label is None:
            ids.append(-1)
        elif e.label not in index:
            raise DataError(f"{e.where}: unknown label {e.label!r}; the training labels are {list(labels)}")
        else:
            ids.append(index[e.label])
    return ids


# ----------------------------------------------------------------------------- tokenising


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


# ----------------------------------------------------------------------------- batching


class FeatureDataset(paddle.io.Dataset):
    """Encoded examples; item ``i`` is ``(index, Features)`` so sorted batches can be put back in order."""

    def __init__(self, features: Sequence[Features]):
        super().__init__()
        self.features = list(features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int):
        return index, self.features[index]

    @property
    def lengths(self) -> List[int]:
        return [len(f.input_ids) for f in self.features]


class Collator:
    """Pads a batch to its longest example: ``input_ids``/``token_type_ids`` ``[batch, seq]`` int64."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items) -> Dict[str, np.ndarray]:
        indices, features = zip(*items)
        width = max(len(f.input_ids) for f in features)
        input_ids = np.full((len(features), width), self.pad_token_id, dtype="int64")  # [batch, seq]
        token_type_ids = np.zeros((len(features), width), dtype="int64")  # [batch, seq]
        for row, f in enumerate(features):
            input_ids[row, : len(f.input_ids)] = f.input_ids
            token_type_ids[row, : len(f.token_type_ids)] = f.token_type_ids
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "labels": np.array([f.label for f in features], dtype="int64"),  # [batch]
            "index": np.array(indices, dtype="int64"),  # [batch], position in the dataset
        }


class LengthGroupedBatchSampler(paddle.io.DistributedBatchSampler):
    """Batches of similar length, so padding wastes little work; shared among data-parallel ranks.

    For training (``shuffle=True``) the examples are shuffled with ``seed + epoch``,
    cut into pools of ``pool_batches`` batches, sorted by length inside each pool,
    and the batches are shuffled again: random, but cheap to pad. For evaluation
    the whole split is sorted longest first. Call :meth:`set_epoch` each epoch;
    the order of an epoch is a function of the seed and the epoch alone, so a
    resumed run sees the same batches.

    ``batch_size`` is the global batch. With ``num_replicas`` ranks (default:
    the ``paddle.distributed`` world), a training batch is split evenly, rank
    ``r`` taking the ``r``-th ``batch_size / num_replicas`` examples, so that
    the ranks together take exactly one process's step (the last, short batch
    of an epoch is dropped if its size does not divide by the number of ranks);
    an evaluation batch goes whole to one rank in turn (gather the results with
    :func:`paddle_dynafast.distributed.gather`).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0,
                 pool_batches: int = 50, drop_last: bool = False, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None):
        super().__init__(dataset=list(lengths), batch_size=batch_size, num_replicas=num_replicas, rank=rank,
                         shuffle=shuffle, drop_last=drop_last)
        if shuffle and batch_size % self.nranks:
            raise ValueError(f"batch size {batch_size} does not divide among {self.nranks} processes")
        self.lengths = list(lengths)
        self.seed = seed
        self.pool_batches = pool_batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> List[List[int]]:
        """The batches of one process holding all the data."""
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            order.sort(key=lambda i: -self.lengths[i])
            return self._cut(order)
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        rng.shuffle(order)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=lambda i: self.lengths[i])
            batches.extend(self._cut(chunk))
        rng.shuffle(batches)
        return batches

    def batches(self) -> List[List[int]]:
        """This rank's batches."""
        batches = self.global_batches()
        if self.nranks == 1:
            return batches
        if not self.shuffle:
            return batches[self.local_rank::self.nranks]
        shards = []
        for batch in batches:
            if len(batch) % self.nranks == 0:  # the last, short batch too when it splits evenly
                share = len(batch) // self.nranks
                shards.append(batch[self.local_rank * share:(self.local_rank + 1) * share])
        return shards

    def _cut(self, order: List[int]) -> List[List[int]]:
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        full, rest = divmod(n, self.batch_size)
        if self.nranks == 1:
            return full if self.drop_last or not rest else full + 1
        if self.shuffle:
            return full + (1 if rest and not self.drop_last and rest % self.nranks == 0 else 0)
        total = full if self.drop_last or not rest else full + 1
        return len(range(self.local_rank, total, self.nranks))


def make_loader(features: Sequence[Features], pad_token_id: int, batch_size: int, shuffle: bool,
                seed: int = 0, shard: bool = True) -> paddle.io.DataLoader:
    """A ``paddle.io.DataLoader`` over length-grouped batches (see :class:`LengthGroupedBatchSampler`).

    ``shard=False`` gives every batch to this process even when there are several.
    """
    dataset = FeatureDataset(features)
    replicas = {} if shard else {"num_replicas": 1, "rank": 0}
    sampler = LengthGroupedBatchSampler(dataset.lengths, batch_size, shuffle=shuffle, seed=seed, **replicas)
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=Collator(pad_token_id),
                                num_workers=0, return_list=True)
