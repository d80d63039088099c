"""Reading data: both file formats, errors with file and line, BOMs and bad bytes, dev held out of train, the
splits of a data folder, raw text and JSON lines, and which examples a slice holds."""
import re

import pytest

from helpers import write_sentiment_data
from paddle_dynafast.config import DataConfig
from paddle_dynafast.data.labels import label_list
from paddle_dynafast.data.readers import (Example, calibration_examples, find_split, read_inputs, fingerprint, hold_out, load_splits, read_examples,
                                          read_json_lines, read_lines, read_texts)
from paddle_dynafast.errors import DataError


def test_reads_label_text_and_tsv_with_pairs(tmp_path):
    (tmp_path / "a.txt").write_text("1 w1 good w2\n0 bad w3\n")
    (tmp_path / "b.tsv").write_text("label\ttext_a\ttext_b\n2\tw1 \"quoted\tw2\n")
    assert read_examples(tmp_path / "a.txt") == [
        Example("w1 good w2", None, "1", f"{tmp_path / 'a.txt'}:1"),
        Example("bad w3", None, "0", f"{tmp_path / 'a.txt'}:2")]
    (b,) = read_examples(tmp_path / "b.tsv")
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
        read_examples(tmp_path / name)


def test_max_examples_cut_train_and_max_eval_examples_dev_and_test(tmp_path):
    write_sentiment_data(tmp_path, n_train=100)
    full = load_splits(tmp_path)
    cut = load_splits(DataConfig(str(tmp_path), max_examples=30, max_eval_examples=4))
    assert cut == {"train": full["train"][:30], "dev": full["dev"][:4], "test": full["test"][:4]}
    assert load_splits(DataConfig(str(tmp_path), max_examples=5))["dev"] == full["dev"][:5]


def test_missing_dev_is_a_seeded_slice_of_train(tmp_path):
    write_sentiment_data(tmp_path, n_train=100)
    (tmp_path / "dev.txt").unlink()
    a = load_splits(DataConfig(str(tmp_path), split_seed=1))
    b = load_splits(DataConfig(str(tmp_path), split_seed=1))
    assert len(a["dev"]) == 10 and len(a["train"]) == 90
    assert a["dev"] == b["dev"]
    assert not {e.where for e in a["dev"]} & {e.where for e in a["train"]}
    with pytest.raises(DataError, match="data directory .*nowhere does not exist"):
        load_splits(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train.txt or train.tsv"):
        load_splits(tmp_path / "empty")
    (tmp_path / "test.tsv").write_text("label\ttext_a\n1\tgood\n")
    with pytest.raises(DataError, match="both test.tsv and test.txt"):
        load_splits(tmp_path)


def test_read_texts_counts_blank_lines(tmp_path, caplog):
    (tmp_path / "u.txt").write_text("good w1\n\n  \nbad w2\n")
    with caplog.at_level("WARNING"):
        examples = read_texts(tmp_path / "u.txt")
    assert [e.text_a for e in examples] == ["good w1", "bad w2"] and examples[1].label is None
    assert "skipped 2 blank line(s)" in caplog.text


def test_shared_data_sets_read_in_place(shared_dir):
    counts = {name: {split: len(examples) for split, examples in load_splits(shared_dir / "data" / name).items()}
              for name in ("sst2", "trec6", "douban_book_review")}
    assert counts["sst2"] == {"train": 6920, "dev": 872, "test": 1821}
    assert counts["trec6"] == {"train": 4907, "dev": 545, "test": 500}  # dev held out of 5452
    assert counts["douban_book_review"] == {"train": 20000, "dev": 10000, "test": 10000}
    assert label_list(load_splits(shared_dir / "data" / "trec6")["train"]) == [str(i) for i in range(6)]


def test_undecodable_bytes_are_replaced_and_logged_by_line(tmp_path, caplog):
    (tmp_path / "train.txt").write_bytes(b"1 good\n4 a sister\xf0city\n0 bad\n")
    with caplog.at_level("WARNING"):
        examples = read_examples(tmp_path / "train.txt")
    assert examples[1].text_a == "a sister\ufffdcity"
    assert "1 line(s) are not valid UTF-8 (lines 2)" in caplog.text


def test_a_bom_is_removed_and_said(tmp_path, caplog):
    """A UTF-8 byte-order mark made a label of its own (``\\ufeff0``); in a .tsv it hid the ``label`` column."""
    (tmp_path / "train.txt").write_bytes(b"\xef\xbb\xbf0 bad w1\n1 good w2\n")
    (tmp_path / "dev.tsv").write_bytes(b"\xef\xbb\xbflabel\ttext_a\n1\tgood\n")
    with caplog.at_level("WARNING"):
        train = read_examples(tmp_path / "train.txt")
        (dev,) = read_examples(tmp_path / "dev.tsv")
    assert [e.label for e in train] == ["0", "1"] and (dev.label, dev.text_a) == ("1", "good")
    assert caplog.text.count("starts with a UTF-8 byte-order mark (BOM); it was removed") == 2


def test_a_tab_separated_txt_is_recognised(tmp_path, caplog):
    (tmp_path / "train.txt").write_text("0\tbad w1 w2\n1\tgood w3\n")
    with caplog.at_level("INFO"):
        examples = read_examples(tmp_path / "train.txt")
    assert [(e.label, e.text_a) for e in examples] == [("0", "bad w1 w2"), ("1", "good w3")]
    assert "tab-separated LABEL<TAB>TEXT lines" in caplog.text
    (tmp_path / "h.txt").write_text("label\ttext_a\n1\tgood\n")
    with pytest.raises(DataError, match=r"h.txt:1: a tab-separated header \['label', 'text_a'\]: this is a .tsv "
                                        r"file; name it h.tsv"):
        read_examples(tmp_path / "h.txt")
    (tmp_path / "m.txt").write_text("0\tbad\n1 good\n")
    with pytest.raises(DataError, match=r"m.txt:2: no tab; line 1 is tab-separated"):
        read_examples(tmp_path / "m.txt")
    (tmp_path / "s.txt").write_text("0 bad\n1\tgood w1\n")
    with pytest.raises(DataError, match=r"s.txt:2: the label '1\\tgood' holds a tab"):
        read_examples(tmp_path / "s.txt")


def test_strict_decoding_names_the_line_and_byte_offset(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"good w1\nbad \xff w2\n")
    with pytest.raises(DataError, match=r"in.txt:2: not valid UTF-8 at byte offset 12 \(byte 5 of the line: "
                                        r"b'\\xff'\)"):
        read_lines(tmp_path / "in.txt")
    import io

    with pytest.raises(DataError, match=r"standard input:1: not valid UTF-8 at byte offset 3"):
        read_lines(io.BytesIO(b"ab \x80\n"))
    assert read_lines(io.BytesIO(b"\xef\xbb\xbfgood\r\nbad\n")) == ["good", "bad"]


def test_find_split_takes_either_format_and_refuses_both(tmp_path):
    assert find_split(tmp_path, "dev") is None
    (tmp_path / "dev.tsv").write_text("label\ttext_a\n1\tgood\n")
    assert find_split(tmp_path, "dev") == tmp_path / "dev.tsv"
    (tmp_path / "test.txt").write_text("1 good\n")
    assert find_split(tmp_path, "test") == tmp_path / "test.txt"
    (tmp_path / "dev.txt").write_text("1 good\n")
    with pytest.raises(DataError, match=r"both dev.tsv and dev.txt; keep one"):
        find_split(tmp_path, "dev")


def test_hold_out_is_seeded_and_takes_at_most_half():
    examples = [Example(f"w{i}", None, "0", f"f:{i}") for i in range(10)]
    kept, held = hold_out(examples, 3, seed=5)
    assert (len(kept), len(held)) == (7, 3) and sorted(kept + held, key=examples.index) == examples
    assert [e.where for e in kept] == sorted((e.where for e in kept), key=lambda w: int(w[2:]))  # in file order
    assert hold_out(examples, 3, seed=5) == (kept, held) and hold_out(examples, 3, seed=6)[1] != held
    assert len(hold_out(examples, 9, seed=5)[1]) == 5
    with pytest.raises(DataError, match=r"1 example\(s\) are too few to hold any out"):
        hold_out(examples[:1], 1, seed=5)


def test_fingerprint_names_which_examples_in_which_order():
    examples = [Example("good", None, "1", f"train.txt:{i}") for i in range(1, 6)]
    same = [Example("other text", None, "0", e.where) for e in examples]  # the places, not the texts
    assert fingerprint(examples) == fingerprint(same) and len(fingerprint(examples)) == 16
    assert fingerprint(examples[:4]) != fingerprint(examples) != fingerprint(examples[::-1])
    int(fingerprint(examples), 16)  # hexadecimal


def test_json_lines_are_read_as_examples():
    lines = ['{"text": " good w1 ", "label": 1, "id": 7}', '{"text": "bad", "label": "neg"}', '{"text": "w2"}']
    assert read_json_lines(lines, "in.jsonl") == [Example("good w1", None, "1", "in.jsonl:1"),
                                                  Example("bad", None, "neg", "in.jsonl:2"),
                                                  Example("w2", None, None, "in.jsonl:3")]
    pairs = read_json_lines(['{"text": "a", "text_b": "b"}'], "stdin")
    assert pairs == [Example("a", "b", None, "stdin:1")]


@pytest.mark.parametrize("lines, message", [
    ([], "in.jsonl: no lines"),
    (['{"text": "a"}', ""], "in.jsonl:2: empty line; expected one JSON object a line"),
    (["{text: 1}"], "in.jsonl:1: not valid JSON (Expecting property name enclosed in double quotes"),
    (['["a"]'], 'in.jsonl:1: expected an object with a "text" field, got list'),
    (['{"txt": "a"}'], 'in.jsonl:1: expected an object with a "text" field, got [\'txt\']'),
    (['{"text": 3}'], 'in.jsonl:1: "text" must be a string, got int'),
    (['{"text": "a", "label": 1.5}'], 'in.jsonl:1: "label" must be a string, got float'),
    (['{"text": " "}'], 'in.jsonl:1: "text" is empty'),
    (['{"text": "a", "text_b": "b"}', '{"text": "c"}'],
     'in.jsonl:2: a single text, but line 1 is a pair; give "text_b" on every line or on none'),
])
def test_bad_json_lines_are_named_with_their_line(lines, message):
    with pytest.raises(DataError, match=re.escape(message)):
        read_json_lines(lines, "in.jsonl")


def test_read_inputs_reads_each_format_from_a_file_or_standard_input(tmp_path):
    import io
    import json

    (tmp_path / "plain.txt").write_text("good w1\nbad w2\n")
    assert [(e.text_a, e.label, e.where) for e in read_inputs(tmp_path / "plain.txt")] == [
        ("good w1", None, f"{tmp_path}/plain.txt:1"), ("bad w2", None, f"{tmp_path}/plain.txt:2")]
    assert [(e.text_a, e.label) for e in read_inputs(tmp_path / "plain.txt", labeled=True)] == [
        ("w1", "good"), ("w2", "bad")]  # LABEL TEXT: the first word is the label
    (tmp_path / "pairs.tsv").write_text("label\ttext_a\ttext_b\n1\ta\tgood b\n")
    assert [(e.text_a, e.text_b, e.label) for e in read_inputs(tmp_path / "pairs.tsv")] == [("a", "good b", "1")]
    rows = [{"text": "a", "text_b": "b", "label": 1}, {"text": "c", "text_b": "d"}]
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "in.jsonl").write_text(lines)
    assert [(e.text_a, e.text_b, e.label) for e in read_inputs(tmp_path / "in.jsonl")] == [
        ("a", "b", "1"), ("c", "d", None)]
    stdin = io.TextIOWrapper(io.BytesIO(lines.encode()))
    assert [e.where for e in read_inputs(jsonl=True, stdin=stdin)] == ["standard input:1", "standard input:2"]
    notebook = io.StringIO("one\r\ntwo\n")  # a text stream with no bytes underneath
    assert [e.text_a for e in read_inputs(stdin=notebook)] == ["one", "two"]


def test_read_inputs_names_the_empty_line_and_the_undecodable_byte(tmp_path):
    import io

    (tmp_path / "in.txt").write_text("good\n \nbad\n\n")
    with pytest.raises(DataError, match=r"in.txt:2: empty line; give one text per line"):
        read_inputs(tmp_path / "in.txt")
    with pytest.raises(DataError, match=r"^standard input:2: not valid UTF-8 at byte offset 11 \(byte 5 of the line"):
        read_inputs(stdin=io.TextIOWrapper(io.BytesIO(b"good w\nbad \xfe\n")))


def test_a_holdout_leaves_training_for_calibration(tmp_path):
    folder = write_sentiment_data(tmp_path / "d", n_train=40, n_dev=10, n_test=10)
    plain = load_splits(DataConfig(str(folder)))
    held = load_splits(DataConfig(str(folder), holdout=6))
    assert len(held["holdout"]) == 6 and len(held["train"]) == 34 and held["dev"] == plain["dev"]
    assert {e.where for e in held["train"]} | {e.where for e in held["holdout"]} == {e.where for e in plain["train"]}
    assert held == load_splits(DataConfig(str(folder), holdout=6))  # seeded: the same examples every time
    assert calibration_examples(held) == held["dev"] + held["holdout"]
    assert calibration_examples(plain) == plain["dev"]
    with pytest.raises(ValueError, match="holdout must be a whole number >= 0, got -1"):
        DataConfig(str(folder), holdout=-1)


def test_what_csv_and_json_would_stop_on_is_named_with_its_line(tmp_path):
    (tmp_path / "big.tsv").write_text("label\ttext_a\n1\tgood\n0\t" + "w" * 131_073 + "\n")
    with pytest.raises(DataError, match=r"big.tsv:3: field larger than field limit \(131072\): no text to classify "
                                        r"is that long; is the file damaged, or not tab-separated\?"):
        read_examples(tmp_path / "big.tsv")
    with pytest.raises(DataError, match=r"in.jsonl:2: JSON nested too deeply; expected one flat object a line"):
        read_json_lines(['{"text": "a"}', "[" * 100_000 + "]" * 100_000], "in.jsonl")


def test_inputs_are_read_as_they_are_used_and_an_empty_input_has_none(tmp_path):
    import io

    from paddle_dynafast.data.readers import iter_inputs

    pulled = []

    class Stdin:  # standard input whose bytes underneath count the lines taken from them
        def __init__(self, count):
            self.buffer = self.lines(count)

        def lines(self, count):
            for i in range(count):
                pulled.append(i)
                yield f"w{i % 90} good\n".encode()

    examples = iter_inputs(stdin=Stdin(10_000))
    first = [next(examples) for _ in range(3)]
    assert [e.where for e in first] == ["standard input:1", "standard input:2", "standard input:3"] and len(pulled) == 3
    assert sum(1 for _ in examples) == 9_997
    for name, content in (("e.txt", ""), ("e.tsv", ""), ("h.tsv", "label\ttext_a\n"), ("e.jsonl", "")):
        (tmp_path / name).write_text(content)
        assert read_inputs(tmp_path / name, labeled=name == "e.txt") == []
    assert read_inputs(stdin=io.TextIOWrapper(io.BytesIO(b""))) == []
    with pytest.raises(DataError, match=r"in.lines: unknown format '.lines'; expected .txt \(LABEL TEXT\) or .tsv"):
        (tmp_path / "in.lines").write_text("1 good\n")
        read_inputs(tmp_path / "in.lines", labeled=True)
