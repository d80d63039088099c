"""Reading text-classification data: the split files of a data folder, plain lines, JSON lines, and the texts to
classify (:func:`read_inputs`: a file or standard input).

Two file formats (``../shared/data/README.md``):

* ``.txt``: one example a line, ``LABEL TEXT`` (the label, one space, the text);
* ``.tsv``: a header with ``label`` and ``text_a`` (and optionally ``text_b`` for
  sentence pairs), read with quoting disabled.

A ``.txt`` file whose first label is followed by a tab is read as
``LABEL<TAB>TEXT`` lines, and logged as tab-separated. A UTF-8 byte-order mark
(BOM) at the start of a file is removed and logged. Bad input is a
:class:`DataError` naming the file and line; nothing is dropped silently. That includes what a reader of ``csv`` or
``json`` would stop on: a ``.tsv`` field longer than ``csv``'s limit (131 072 characters), a JSON line nested too
deeply to decode. :func:`iter_inputs` reads the texts to classify as they are used, so that an input of any length
streams through in bounded memory.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import json
import logging
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, Iterator, List, Optional, Sequence, TextIO

from ..config import DataConfig
from ..errors import DataError

logger = logging.getLogger(__name__)


SPLITS = ("train", "dev", "test")
HOLDOUT = "holdout"
"""The split of training examples held out of training to calibrate with (``DataConfig.holdout``)."""
CALIBRATION = "calibration"
"""The name of what a model is calibrated on: dev and the holdout (:func:`calibration_examples`)."""


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: Optional[str]
    label: Optional[str]
    where: str
    """``file:line`` of the example, for error messages."""


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
    return list(_iter_label_text(path, strict))


def _iter_label_text(path: Path, strict: bool = False) -> Iterator[Example]:
    separator = " "
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
        yield Example(text.strip(), None, label, f"{path}:{number}")


def _read_tsv(path: Path, strict: bool = False) -> List[Example]:
    return list(_iter_tsv(path, strict))


def _csv_rows(reader, path: Path) -> Iterator[List[str]]:
    """The rows of ``reader``; a row ``csv`` cannot take (a field over its limit of 131 072 characters) is a
    :class:`DataError` naming the file and line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(f"{path}:{reader.line_num}: {error}: no text to classify is that long; is the file "
                            "damaged, or not tab-separated?") from None
        yield row


def _iter_tsv(path: Path, strict: bool = False, empty_ok: bool = False) -> Iterator[Example]:
    """The examples of a ``.tsv`` as they are read; a file without even a header is an error unless ``empty_ok``
    (then it has no examples)."""
    reader = csv.reader(_lines(path, strict), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows = _csv_rows(reader, path)
    header = next(rows, None)
    if header is None:
        if empty_ok:
            return
        raise DataError(f"{path}: empty file, no header")
    missing = [c for c in ("label", "text_a") if c not in header]
    if missing:
        raise DataError(f"{path}:1: header {header} is missing column(s) {missing}")
    col = {name: header.index(name) for name in header}
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}:{number}: {len(row)} fields, header has {len(header)}")
        text_a = row[col["text_a"]].strip()
        text_b = row[col["text_b"]].strip() if "text_b" in col else None
        if not text_a or text_b == "":
            raise DataError(f"{path}:{number}: empty text")
        yield Example(text_a, text_b, row[col["label"]].strip(), f"{path}:{number}")


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
    examples = list(iter_json_lines(lines, where))
    if not examples:
        raise DataError(f"{where}: no lines")
    return examples


def iter_json_lines(lines: Iterable[str], where: str) -> Iterator[Example]:
    """:func:`read_json_lines` one line at a time (none for no lines)."""
    pair = None
    for number, line in enumerate(lines, start=1):
        here = f"{where}:{number}"
        if not line.strip():
            raise DataError(f"{here}: empty line; expected one JSON object a line")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{here}: not valid JSON ({error})") from None
        except RecursionError:  # the decoder recurses per level: a line nested 100 000 deep
            raise DataError(f"{here}: JSON nested too deeply; expected one flat object a line") from None
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
        if pair is None:
            pair = example.text_b is not None
        elif pair != (example.text_b is not None):
            kinds = ("a single text", "a pair") if pair else ("a pair", "a single text")
            raise DataError(f"{here}: {kinds[0]}, but line 1 is {kinds[1]}; give \"text_b\" on every line or on none")
        yield example


def read_inputs(path: Optional[str | Path] = None, labeled: bool = False, jsonl: bool = False,
                stdin: Optional[TextIO] = None) -> List[Example]:
    """The texts to classify, from ``path`` or, without one, from ``stdin`` (default: ``sys.stdin`` of the call):
    one text per line; ``labeled`` LABEL TEXT lines, or a .tsv (``text_b`` for pairs), read as a split file; JSON
    lines with ``jsonl`` or from a .jsonl file (:func:`read_json_lines`). Decoded strictly: bytes that are not
    UTF-8 are a :class:`DataError` naming the file (or standard input), the line and the byte offset; so is an
    empty line. An empty input gives no examples. :func:`iter_inputs` reads them one at a time."""
    return list(iter_inputs(path, labeled, jsonl, stdin))


def iter_inputs(path: Optional[str | Path] = None, labeled: bool = False, jsonl: bool = False,
                stdin: Optional[TextIO] = None) -> Iterator[Example]:
    """:func:`read_inputs` one example at a time, each read when it is asked for: memory does not grow with the
    input, and an error is raised when its line is reached."""
    path = None if path is None else str(path)
    if path and (labeled or path.endswith(".tsv")):
        file = Path(path)
        if not file.is_file():
            raise DataError(f"{file}: no such file")
        if file.suffix == ".tsv":
            yield from _iter_tsv(file, strict=True, empty_ok=True)
        elif file.suffix == ".txt":
            yield from _iter_label_text(file, strict=True)
        else:
            raise DataError(f"{file}: unknown format {file.suffix!r}; expected .txt (LABEL TEXT) or .tsv")
        return
    where = path or "standard input"
    stdin = sys.stdin if stdin is None else stdin
    raw = getattr(stdin, "buffer", None)
    if path:
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file")
        handle = open(path, "rb")
    else:
        handle = contextlib.nullcontext(raw)
    with handle as source:
        if source is not None:
            lines = decode_lines(source, where, strict=True)
        else:  # a text stream without bytes underneath (a notebook's)
            lines = (line.rstrip("\r\n") for line in stdin)
        if jsonl or (path or "").endswith(".jsonl"):
            yield from iter_json_lines(lines, where)
            return
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                raise DataError(f"{where}:{number}: empty line; give one text per line")
            yield Example(text, None, None, f"{where}:{number}")


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
    if config.holdout:
        splits["train"], splits[HOLDOUT] = hold_out(splits["train"], config.holdout, config.split_seed + 1)
        logger.info("%s: held out %d train examples from training, to calibrate with dev (seed %d)", data_dir,
                    len(splits[HOLDOUT]), config.split_seed + 1)
    for split, examples in splits.items():
        cap = config.max_examples if split == "train" or config.max_eval_examples is None else config.max_eval_examples
        splits[split] = examples if cap is None else examples[:cap]
    return splits


def calibration_examples(splits: Dict[str, List[Example]]) -> List[Example]:
    """What a model is calibrated on: dev, and the training examples held out for it (``DataConfig.holdout``)."""
    return splits["dev"] + splits.get(HOLDOUT, [])


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
