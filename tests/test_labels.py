"""The label set: sorted numerically, unknown labels named with their line, labels that look like typos refused."""
import re

import pytest

from helpers import write_sentiment_data
from paddle_dynafast.data.labels import label_ids, label_list, training_labels
from paddle_dynafast.data.readers import Example, load_splits, read_examples
from paddle_dynafast.errors import DataError


def test_unknown_label_names_its_line(tmp_path):
    (tmp_path / "train.txt").write_text("0 good\n1 bad\n")
    (tmp_path / "dev.txt").write_text("1 good\n7 bad\n")
    splits = load_splits(tmp_path)
    labels = label_list(splits["train"])
    assert labels == ["0", "1"]
    with pytest.raises(DataError, match=r"dev.txt:2: unknown label '7'; the training labels are \['0', '1'\]"):
        label_ids(splits["dev"], labels)


def test_labels_sort_numerically():
    examples = [Example("x", None, label, "f:1") for label in ("10", "2", "0", "1")]
    assert label_list(examples) == ["0", "1", "2", "10"]


def test_a_bom_in_every_split_still_gives_two_labels(tmp_path, caplog):
    write_sentiment_data(tmp_path, n_train=40, n_dev=10, n_test=10)
    for split in ("train", "dev", "test"):
        path = tmp_path / f"{split}.txt"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with caplog.at_level("WARNING"):
        splits = load_splits(tmp_path)
    assert training_labels(splits["train"]) == ["0", "1"]
    assert label_ids(splits["dev"], ["0", "1"])  # no unknown label
    assert caplog.text.count("BOM") == 3


@pytest.mark.parametrize("odd, message", [
    ("pos", "train.txt:7: label 'pos' is not a whole number, unlike the training labels ['0', '1']; a typo?"),
    ("0.0", "train.txt:7: label '0.0' is not a whole number, unlike the training labels ['0', '1']; a typo?"),
    ("7", "train.txt:7: label '7' occurs 1 time(s) in 41 training examples, the label '0' 20 times; a typo?"),
])
def test_a_label_that_looks_like_a_typo_is_refused_with_its_line(tmp_path, odd, message):
    lines = [f"{i % 2} w{i}" for i in range(40)]
    lines.insert(6, f"{odd} w99")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    examples = read_examples(tmp_path / "train.txt")
    with pytest.raises(DataError, match=re.escape(message)):
        training_labels(examples)
    explicit = ["0", "1", odd]
    assert training_labels(examples, explicit) == explicit  # given explicitly, it is a class as asked
    with pytest.raises(DataError, match=r"train.txt:7: label '.*' is not one of --labels \['0', '1'\]"):
        training_labels(examples, ["0", "1"])


def test_labels_that_are_all_words_or_rare_in_a_small_split_are_fine(tmp_path):
    words = [Example("t", None, label, f"f:{i}") for i, label in enumerate(["neg", "pos", "pos", "neutral"])]
    assert training_labels(words) == ["neg", "neutral", "pos"]
    few = [Example("t", None, label, f"f:{i}") for i, label in enumerate(["0", "1", "1", "2"])]
    assert training_labels(few) == ["0", "1", "2"]  # one '0' in four examples is not rare
