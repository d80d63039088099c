"""Data: both file formats, errors with file and line, tokenising, padding, length-grouped batches."""
import re

import numpy as np
import pytest

from helpers import tiny_hf_weights, write_hf_dir, write_sentiment_data
from paddle_dynafast import data
from paddle_dynafast.model.loading import load_tokenizer
from paddle_dynafast.config import DataConfig
from paddle_dynafast.errors import DataError


@pytest.fixture()
def tokenizer(tmp_path):
    return load_tokenizer(write_hf_dir(tmp_path / "m", tiny_hf_weights()))


def test_reads_label_text_and_tsv_with_pairs(tmp_path):
    (tmp_path / "a.txt").write_text("1 w1 good w2\n0 bad w3\n")
    (tmp_path / "b.tsv").write_text("label\ttext_a\ttext_b\n2\tw1 \"quoted\tw2\n")
    assert data.read_examples(tmp_path / "a.txt") == [
        data.Example("w1 good w2", None, "1", f"{tmp_path / 'a.txt'}:1"),
        data.Example("bad w3", None, "0", f"{tmp_path / 'a.txt'}:2")]
    (b,) = data.read_examples(tmp_path / "b.tsv")
    assert (b.text_a, b.text_b, b.label, b.where) == ('w1 "quoted', "w2", "2", f"{tmp_path / 'b.tsv'}:2")


@pytest.mark.parametrize("name, content, message", [
    ("e.txt", "", "empty file"),
    ("e.tsv", "", "empty file, no header"),
    ("h.tsv", "label\ttext_a\n", "empty file, no examples"),
    ("l.txt", "1 good\n\n0 bad\n", "l.txt:2: empty line"),
    ("t.txt", "1 good\n0 \n", "t.txt:2: empty text after label '0'"),
    ("c.tsv", "label\ttext\n1\tgood\n", "c.tsv:1: header ['label', 'text'] is missing column(s) ['text_a']"),
    ("f.tsv", "label\ttext_a\n1\tgood\textra\n", "f.tsv:2: 3 fields, header has 2"),
    ("x.tsv", "label\ttext_a\n1\t  \n", "x.tsv:2: empty text"),
    ("y.csv", "1,good\n", "unknown format '.csv'"),
])
def test_bad_files_name_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=re.escape(message)):
        data.read_examples(tmp_path / name)


def test_unknown_label_names_its_line(tmp_path):
    (tmp_path / "train.txt").write_text("0 good\n1 bad\n")
    (tmp_path / "dev.txt").write_text("1 good\n7 bad\n")
    splits = data.load_splits(tmp_path)
    labels = data.label_list(splits["train"])
    assert labels == ["0", "1"]
    with pytest.raises(DataError, match=r"dev.txt:2: unknown label '7'; the training labels are \['0', '1'\]"):
        data.label_ids(splits["dev"], labels)


def test_labels_sort_numerically():
    examples = [data.Example("x", None, label, "f:1") for label in ("10", "2", "0", "1")]
    assert data.label_list(examples) == ["0", "1", "2", "10"]


def test_max_examples_cut_train_and_max_eval_examples_dev_and_test(tmp_path):
    write_sentiment_data(tmp_path, n_train=100)
    full = data.load_splits(tmp_path)
    cut = data.load_splits(DataConfig(str(tmp_path), max_examples=30, max_eval_examples=4))
    assert cut == {"train": full["train"][:30], "dev": full["dev"][:4], "test": full["test"][:4]}
    assert data.load_splits(DataConfig(str(tmp_path), max_examples=5))["dev"] == full["dev"][:5]


def test_missing_dev_is_a_seeded_slice_of_train(tmp_path):
    write_sentiment_data(tmp_path, n_train=100)
    (tmp_path / "dev.txt").unlink()
    a = data.load_splits(DataConfig(str(tmp_path), split_seed=1))
    b = data.load_splits(DataConfig(str(tmp_path), split_seed=1))
    assert len(a["dev"]) == 10 and len(a["train"]) == 90
    assert a["dev"] == b["dev"]
    assert not {e.where for e in a["dev"]} & {e.where for e in a["train"]}
    with pytest.raises(DataError, match="data directory .*nowhere does not exist"):
        data.load_splits(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train.txt or train.tsv"):
        data.load_splits(tmp_path / "empty")
    (tmp_path / "test.tsv").write_text("label\ttext_a\n1\tgood\n")
    with pytest.raises(DataError, match="both test.tsv and test.txt"):
        data.load_splits(tmp_path)


def test_read_texts_counts_blank_lines(tmp_path, caplog):
    (tmp_path / "u.txt").write_text("good w1\n\n  \nbad w2\n")
    with caplog.at_level("WARNING"):
        examples = data.read_texts(tmp_path / "u.txt")
    assert [e.text_a for e in examples] == ["good w1", "bad w2"] and examples[1].label is None
    assert "skipped 2 blank line(s)" in caplog.text


def test_encode_equals_tokenizer_and_counts_truncation(tokenizer, caplog):
    examples = [data.Example("w1 good w2", None, "1", "f:1"),
                data.Example(" ".join(f"w{i}" for i in range(20)), None, "0", "f:2"),
                data.Example("w1 w2 w3 w4 w5 w6", "w7 w8", "0", "f:3")]
    with caplog.at_level("INFO"):
        features = data.encode(examples, tokenizer, max_seq_len=8, labels=["0", "1"])
    assert features[0].input_ids == tokenizer("w1 good w2")["input_ids"]
    assert features[0].label == 1 and not features[0].truncated
    assert features[1].input_ids == tokenizer(" ".join(f"w{i}" for i in range(20)), max_length=8, truncation=True)["input_ids"]
    assert features[1].truncated and len(features[1].input_ids) == 8
    # pairs: longest first -> a keeps 3 tokens, b keeps 2; [CLS] a [SEP] b [SEP]
    pair = features[2]
    assert tokenizer.convert_ids_to_tokens(pair.input_ids) == ["[CLS]", "w1", "w2", "w3", "[SEP]", "w7", "w8", "[SEP]"]
    assert pair.token_type_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    assert "truncated 2 of 3 examples to max_seq_len 8" in caplog.text


def test_collator_pads_with_the_pad_id():
    features = [data.Features([2, 9, 3], [0, 0, 0], 1, False), data.Features([2, 3], [0, 0], 0, False)]
    batch = data.Collator(pad_token_id=0)([(5, features[0]), (7, features[1])])
    np.testing.assert_array_equal(batch["input_ids"], [[2, 9, 3], [2, 3, 0]])
    np.testing.assert_array_equal(batch["labels"], [1, 0])
    np.testing.assert_array_equal(batch["index"], [5, 7])
    assert batch["input_ids"].dtype == np.int64


def test_length_grouped_sampler():
    lengths = list(np.random.default_rng(0).integers(3, 60, size=1000))
    sampler = data.LengthGroupedBatchSampler(lengths, batch_size=32, shuffle=True, seed=7, pool_batches=4)
    epoch0 = sampler.batches()
    assert sorted(i for b in epoch0 for i in b) == list(range(1000)) and len(epoch0) == len(sampler) == 32
    assert sampler.batches() == epoch0  # same epoch, same order (resume relies on it)
    sampler.set_epoch(1)
    assert sampler.batches() != epoch0
    # grouping saves padding against a plain shuffle
    padded = sum(len(b) * max(lengths[i] for i in b) for b in epoch0)
    order = np.random.default_rng(1).permutation(1000)
    plain = sum(len(b) * max(lengths[i] for i in b) for b in np.array_split(order, 32))
    assert padded < 0.8 * plain
    evaluation = data.LengthGroupedBatchSampler(lengths, batch_size=100, shuffle=False).batches()
    flat = [lengths[i] for b in evaluation for i in b]
    assert flat == sorted(lengths, reverse=True)


def test_loader_yields_tensors_in_batches(tokenizer, tmp_path):
    write_sentiment_data(tmp_path / "d", n_train=50)
    examples = data.load_splits(tmp_path / "d")["train"]
    features = data.encode(examples, tokenizer, 16, labels=["0", "1"])
    loader = data.make_loader(features, tokenizer.pad_token_id, batch_size=8, shuffle=False)
    seen = []
    for batch in loader:
        assert list(batch["input_ids"].shape)[0] <= 8 and str(batch["input_ids"].dtype) == "paddle.int64"
        seen.extend(batch["index"].numpy().tolist())
    assert sorted(seen) == list(range(50))


def test_char_vocab_tokenises_chinese_by_character(tmp_path):
    from paddlenlp.transformers import BertTokenizer

    vocab = data.build_char_vocab(["这本书很好看", "不好看 abc", "好"], min_count=1)
    assert vocab[:5] == list(data.SPECIAL_TOKENS)
    assert vocab[5] == "好"  # the most frequent character first
    assert "a" in vocab and "##b" in vocab and "##c" in vocab
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(vocab_file=str(tmp_path / "vocab.txt"))
    assert tok.tokenize("这书不好看abc") == ["这", "书", "不", "好", "看", "abc"[0], "##b", "##c"]
    assert tok.tokenize("猫") == ["[UNK]"]
    rare = data.build_char_vocab(["这本书很好看", "不好看", "好"], min_count=2)
    assert "这" not in rare and "好" in rare and "看" in rare


def test_shared_data_sets_read_in_place(shared_dir):
    counts = {name: {split: len(examples) for split, examples in data.load_splits(shared_dir / "data" / name).items()}
              for name in ("sst2", "trec6", "douban_book_review")}
    assert counts["sst2"] == {"train": 6920, "dev": 872, "test": 1821}
    assert counts["trec6"] == {"train": 4907, "dev": 545, "test": 500}  # dev held out of 5452
    assert counts["douban_book_review"] == {"train": 20000, "dev": 10000, "test": 10000}
    assert data.label_list(data.load_splits(shared_dir / "data" / "trec6")["train"]) == [str(i) for i in range(6)]


def test_undecodable_bytes_are_replaced_and_logged_by_line(tmp_path, caplog):
    (tmp_path / "train.txt").write_bytes(b"1 good\n4 a sister\xf0city\n0 bad\n")
    with caplog.at_level("WARNING"):
        examples = data.read_examples(tmp_path / "train.txt")
    assert examples[1].text_a == "a sister\ufffdcity"
    assert "1 line(s) are not valid UTF-8 (lines 2)" in caplog.text


def test_a_bom_is_removed_and_said(tmp_path, caplog):
    """A UTF-8 byte-order mark made a label of its own (``\\ufeff0``); in a .tsv it hid the ``label`` column."""
    (tmp_path / "train.txt").write_bytes(b"\xef\xbb\xbf0 bad w1\n1 good w2\n")
    (tmp_path / "dev.tsv").write_bytes(b"\xef\xbb\xbflabel\ttext_a\n1\tgood\n")
    with caplog.at_level("WARNING"):
        train = data.read_examples(tmp_path / "train.txt")
        (dev,) = data.read_examples(tmp_path / "dev.tsv")
    assert [e.label for e in train] == ["0", "1"] and (dev.label, dev.text_a) == ("1", "good")
    assert caplog.text.count("starts with a UTF-8 byte-order mark (BOM); it was removed") == 2


def test_a_bom_in_every_split_still_gives_two_labels(tmp_path, caplog):
    write_sentiment_data(tmp_path, n_train=40, n_dev=10, n_test=10)
    for split in ("train", "dev", "test"):
        path = tmp_path / f"{split}.txt"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with caplog.at_level("WARNING"):
        splits = data.load_splits(tmp_path)
    assert data.training_labels(splits["train"]) == ["0", "1"]
    assert data.label_ids(splits["dev"], ["0", "1"])  # no unknown label
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
    examples = data.read_examples(tmp_path / "train.txt")
    with pytest.raises(DataError, match=re.escape(message)):
        data.training_labels(examples)
    explicit = ["0", "1", odd]
    assert data.training_labels(examples, explicit) == explicit  # given explicitly, it is a class as asked
    with pytest.raises(DataError, match=r"train.txt:7: label '.*' is not one of --labels \['0', '1'\]"):
        data.training_labels(examples, ["0", "1"])


def test_labels_that_are_all_words_or_rare_in_a_small_split_are_fine(tmp_path):
    words = [data.Example("t", None, label, f"f:{i}") for i, label in enumerate(["neg", "pos", "pos", "neutral"])]
    assert data.training_labels(words) == ["neg", "neutral", "pos"]
    few = [data.Example("t", None, label, f"f:{i}") for i, label in enumerate(["0", "1", "1", "2"])]
    assert data.training_labels(few) == ["0", "1", "2"]  # one '0' in four examples is not rare


def test_a_tab_separated_txt_is_recognised(tmp_path, caplog):
    (tmp_path / "train.txt").write_text("0\tbad w1 w2\n1\tgood w3\n")
    with caplog.at_level("INFO"):
        examples = data.read_examples(tmp_path / "train.txt")
    assert [(e.label, e.text_a) for e in examples] == [("0", "bad w1 w2"), ("1", "good w3")]
    assert "tab-separated LABEL<TAB>TEXT lines" in caplog.text
    (tmp_path / "h.txt").write_text("label\ttext_a\n1\tgood\n")
    with pytest.raises(DataError, match=r"h.txt:1: a tab-separated header \['label', 'text_a'\]: this is a .tsv "
                                        r"file; name it h.tsv"):
        data.read_examples(tmp_path / "h.txt")
    (tmp_path / "m.txt").write_text("0\tbad\n1 good\n")
    with pytest.raises(DataError, match=r"m.txt:2: no tab; line 1 is tab-separated"):
        data.read_examples(tmp_path / "m.txt")
    (tmp_path / "s.txt").write_text("0 bad\n1\tgood w1\n")
    with pytest.raises(DataError, match=r"s.txt:2: the label '1\\tgood' holds a tab"):
        data.read_examples(tmp_path / "s.txt")


def test_strict_decoding_names_the_line_and_byte_offset(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"good w1\nbad \xff w2\n")
    with pytest.raises(DataError, match=r"in.txt:2: not valid UTF-8 at byte offset 12 \(byte 5 of the line: "
                                        r"b'\\xff'\)"):
        data.read_lines(tmp_path / "in.txt")
    import io

    with pytest.raises(DataError, match=r"standard input:1: not valid UTF-8 at byte offset 3"):
        data.read_lines(io.BytesIO(b"ab \x80\n"))
    assert data.read_lines(io.BytesIO(b"\xef\xbb\xbfgood\r\nbad\n")) == ["good", "bad"]


def test_pairs_are_cut_as_the_tokenizer_cuts_them(tokenizer):
    """Longest first, a tie from text_b: a deployment that calls ``tokenizer(a, text_pair=b, truncation=True)`` (the
    deployment example) feeds the ids and token types we trained on."""
    for n_a, n_b in ((5, 5), (6, 2), (2, 6), (3, 4), (1, 9)):
        a, b = " ".join(f"w{i}" for i in range(n_a)), " ".join(f"w{i}" for i in range(10, 10 + n_b))
        for max_seq_len in range(5, 14):
            got = data.encode([data.Example(a, b, None, "f:1")], tokenizer, max_seq_len)[0]
            expected = tokenizer(a, text_pair=b, max_length=max_seq_len, truncation=True)
            assert (got.input_ids, got.token_type_ids) == (expected["input_ids"], expected["token_type_ids"]), (
                n_a, n_b, max_seq_len)


def test_read_inputs_reads_each_format_from_a_file_or_standard_input(tmp_path):
    import io
    import json

    (tmp_path / "plain.txt").write_text("good w1\nbad w2\n")
    assert [(e.text_a, e.label, e.where) for e in data.read_inputs(tmp_path / "plain.txt")] == [
        ("good w1", None, f"{tmp_path}/plain.txt:1"), ("bad w2", None, f"{tmp_path}/plain.txt:2")]
    assert [(e.text_a, e.label) for e in data.read_inputs(tmp_path / "plain.txt", labeled=True)] == [
        ("w1", "good"), ("w2", "bad")]  # LABEL TEXT: the first word is the label
    (tmp_path / "pairs.tsv").write_text("label\ttext_a\ttext_b\n1\ta\tgood b\n")
    assert [(e.text_a, e.text_b, e.label) for e in data.read_inputs(tmp_path / "pairs.tsv")] == [("a", "good b", "1")]
    rows = [{"text": "a", "text_b": "b", "label": 1}, {"text": "c", "text_b": "d"}]
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "in.jsonl").write_text(lines)
    assert [(e.text_a, e.text_b, e.label) for e in data.read_inputs(tmp_path / "in.jsonl")] == [
        ("a", "b", "1"), ("c", "d", None)]
    stdin = io.TextIOWrapper(io.BytesIO(lines.encode()))
    assert [e.where for e in data.read_inputs(jsonl=True, stdin=stdin)] == ["standard input:1", "standard input:2"]
    notebook = io.StringIO("one\r\ntwo\n")  # a text stream with no bytes underneath
    assert [e.text_a for e in data.read_inputs(stdin=notebook)] == ["one", "two"]


def test_read_inputs_names_the_empty_line_and_the_undecodable_byte(tmp_path):
    import io

    (tmp_path / "in.txt").write_text("good\n \nbad\n\n")
    with pytest.raises(DataError, match=r"in.txt:2: empty line \(2 in all\); give one text per line"):
        data.read_inputs(tmp_path / "in.txt")
    with pytest.raises(DataError, match=r"^standard input:2: not valid UTF-8 at byte offset 11 \(byte 5 of the line"):
        data.read_inputs(stdin=io.TextIOWrapper(io.BytesIO(b"good w\nbad \xfe\n")))
