"""Predictions for texts and sentence pairs on any runtime: input order, batch sizes, clear errors, exported equals
dygraph on pairs; and the predict command (plain lines, .tsv with text_b, JSON lines)."""
import io
import json

import numpy as np
import pytest

from helpers import pairs_of, texts_of
from paddle_dynafast import cli
from paddle_dynafast.data.batching import Collator, FeatureDataset
from paddle_dynafast.runtime.dygraph import DygraphRuntime
from paddle_dynafast.runtime.predictor import Predictor


def test_bad_requests_are_clear_errors(tiny_exports):
    predictor = Predictor(tiny_exports[(1.0, True)], threads=1)
    with pytest.raises(ValueError, match="no texts to predict"):
        predictor.predict([])
    with pytest.raises(ValueError, match=r"text 1 is empty \(2 empty text\(s\) in all\)"):
        predictor.predict(["good w1", "  ", ""])
    with pytest.raises(ValueError, match=r"speed 2.0 is not in \[0, 1\]"):
        predictor.predict(["good"], speed=2.0)
    long = predictor.predict(["w1 " * 40 + "good", "bad"])
    assert long.truncated == 1 and long.probs.shape == (2, 2)


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_results_come_back_in_input_order_for_any_batch_size(tiny_exports, toy_data, batch_size):
    texts = texts_of(toy_data, 30)
    one_by_one = [Predictor(tiny_exports[(1.0, True)], threads=1).predict([t], speed=0.3) for t in texts]
    got = Predictor(tiny_exports[(1.0, True)], threads=1).predict(texts, speed=0.3, batch_size=batch_size)
    assert got.labels == [p.labels[0] for p in one_by_one]
    assert got.exit_layer.tolist() == [int(p.exit_layer[0]) for p in one_by_one]
    np.testing.assert_allclose(got.probs, np.concatenate([p.probs for p in one_by_one]), atol=1e-5)


def test_a_predictor_takes_a_runtime_object(tiny_exports, toy_data):
    texts = texts_of(toy_data, 12)
    runtime = DygraphRuntime(tiny_exports[(0.5, True)])
    got = Predictor(runtime).predict(texts, speed=0.3)
    expected = Predictor(tiny_exports[(0.5, True)], threads=1).predict(texts, speed=0.3)
    assert got.labels == expected.labels and got.exit_layer.tolist() == expected.exit_layer.tolist()


def test_predict_command(tmp_path, tiny_exports, toy_data, capsys):
    code = cli.main(["predict", "--model", str(tiny_exports[(0.5, True)]), "--input", str(toy_data / "test.txt"),
                     "--labeled", "--speed", "0.3", "--threads", "1", "--output", str(tmp_path / "out.jsonl")])
    assert code == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(lines) == 48 and set(lines[0]) == {"label", "probs", "exit_layer"}
    texts = texts_of(toy_data, 48)
    expected = Predictor(tiny_exports[(0.5, True)], threads=1).predict(texts, speed=0.3)
    assert [line["label"] for line in lines] == expected.labels
    (tmp_path / "in.txt").write_text("good w1\n\nbad w2\n")
    code = cli.main(["predict", "--model", str(tiny_exports[(0.5, True)]), "--input", str(tmp_path / "in.txt")])
    assert code == 2 and "in.txt:2: empty line; give one text per line" in capsys.readouterr().err


def _predict(*args):
    return cli.main(["predict", *map(str, args), "--threads", "1"])


def test_predict_decodes_strictly_naming_the_line_and_byte(tmp_path, tiny_exports, capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"good w1\nbad \xfe\xff w2\n")))
    assert _predict("--model", tiny_exports[(1.0, True)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["paddle-dynafast predict: error: standard input:2: not valid UTF-8 at byte offset 12 (byte 5 of "
                   "the line: b'\\xfe')"]
    (tmp_path / "in.txt").write_bytes(b"good\n\xc3\x28 w1\n")
    assert _predict("--model", tiny_exports[(1.0, True)], "--input", tmp_path / "in.txt") == 2
    assert "in.txt:2: not valid UTF-8 at byte offset 5" in capsys.readouterr().err
    (tmp_path / "in.txt").write_bytes(b"1 good\n0 \xff\n")
    assert _predict("--model", tiny_exports[(1.0, True)], "--input", tmp_path / "in.txt", "--labeled") == 2
    assert "in.txt:2: not valid UTF-8" in capsys.readouterr().err


def test_predict_refuses_gold_labels_the_model_does_not_know(tmp_path, tiny_exports, capsys):
    (tmp_path / "gold.txt").write_text("1 good w1\npos bad w2\n")
    assert _predict("--model", tiny_exports[(1.0, True)], "--input", tmp_path / "gold.txt", "--labeled") == 2
    assert "gold.txt:2: label 'pos' is not one of the labels ['0', '1'] of" in capsys.readouterr().err


def test_predict_warns_that_speed_does_nothing_without_the_exit_loop(tmp_path, tiny_exports, capsys):
    (tmp_path / "in.txt").write_text("good w1\n")
    assert _predict("--model", tiny_exports[(1.0, False)], "--input", tmp_path / "in.txt", "--speed", "0.3") == 0
    assert "--speed 0.3 has no effect:" in capsys.readouterr().err
    assert _predict("--model", tiny_exports[(1.0, True)], "--input", tmp_path / "in.txt", "--speed", "0.3") == 0
    assert "no effect" not in capsys.readouterr().err


def test_predict_never_writes_over_its_input(tmp_path, tiny_exports, capsys):
    (tmp_path / "in.txt").write_text("good w1\n")
    assert _predict("--model", tiny_exports[(1.0, True)], "--input", tmp_path / "in.txt", "--output",
                    tmp_path / "in.txt") == 2
    assert "would write over the input" in capsys.readouterr().err
    assert (tmp_path / "in.txt").read_text() == "good w1\n"


def test_pairs_run_with_real_token_types_and_exported_equals_dygraph(tiny_pair_export, pair_data):
    a, b, gold = pairs_of(pair_data, 48)
    exported = Predictor(tiny_pair_export, threads=1)
    features, _ = exported.encode(a[:1], b[:1])
    n_a = len(exported.tokenizer.tokenize(a[0])) + 2  # [CLS] a [SEP]
    assert features[0].token_type_ids == [0] * n_a + [1] * (len(features[0].input_ids) - n_a)
    for speed in (0.0, 0.3):
        got = exported.predict(a, speed=speed, text_b=b, batch_size=8)
        reference = Predictor(tiny_pair_export, runtime="dygraph").predict(a, speed=speed, text_b=b, batch_size=8)
        np.testing.assert_allclose(got.probs, reference.probs, atol=1e-5)
        assert got.exit_layer.tolist() == reference.exit_layer.tolist() and got.labels == reference.labels
    # the second segment's token types reach the program: the same ids with zeros give other probabilities
    features, _ = exported.encode(a, b)
    batch = Collator(exported.tokenizer.pad_token_id)(list(FeatureDataset(features)))
    with_types, _ = exported.run_batch(batch["input_ids"], batch["token_type_ids"])
    zeros, _ = exported.run_batch(batch["input_ids"], np.zeros_like(batch["token_type_ids"]))
    assert np.abs(with_types - zeros).max() > 1e-3
    np.testing.assert_allclose(with_types, exported.predict(a, text_b=b).probs, atol=1e-5)
    # the model learned the pair task: only the second text's word counts
    assert np.mean([p == g for p, g in zip(got.labels, gold)]) >= 0.75


def test_pair_errors_name_the_problem(tiny_pair_export):
    predictor = Predictor(tiny_pair_export, threads=1)
    with pytest.raises(ValueError, match="1 text_b for 2 texts"):
        predictor.predict(["good", "bad"], text_b=["good"])
    with pytest.raises(ValueError, match=r"text_b 0 is empty"):
        predictor.predict(["good"], text_b=[" "])
    with pytest.raises(ValueError, match="texts must be a list of strings, not one string"):
        predictor.predict("good w1")
    with pytest.raises(ValueError, match="text 1 is not a string but int"):
        predictor.predict(["good", 3])


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "jsonl-stdin"])
def test_predict_command_takes_pairs(tmp_path, tiny_pair_export, pair_data, fmt, monkeypatch):
    a, b, gold = pairs_of(pair_data, 48)
    if fmt == "tsv":
        source = pair_data / "test.tsv"
    else:
        source = tmp_path / "in.jsonl"
        source.write_text("".join(json.dumps({"text": x, "text_b": y, "label": g, "id": i}) + "\n"
                                  for i, (x, y, g) in enumerate(zip(a, b, gold))))
    args = ["predict", "--model", str(tiny_pair_export), "--speed", "0.3", "--threads", "1",
            "--output", str(tmp_path / "out.jsonl")]
    if fmt == "jsonl-stdin":
        monkeypatch.setattr("sys.stdin", io.StringIO(source.read_text()))
        args.append("--jsonl")
    else:
        args += ["--input", str(source)]
    assert cli.main(args) == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    expected = Predictor(tiny_pair_export, threads=1).predict(a, speed=0.3, text_b=b)
    assert [line["label"] for line in lines] == expected.labels
    assert [line["exit_layer"] for line in lines] == expected.exit_layer.tolist()


@pytest.mark.parametrize("content, message", [
    ('{"text": "good"}\n\n', "in.jsonl:2: empty line"),
    ('{"text": "good"\n', "in.jsonl:1: not valid JSON"),
    ('["good"]\n', 'in.jsonl:1: expected an object with a "text" field, got list'),
    ('{"txt": "good"}\n', "in.jsonl:1: expected an object with a \"text\" field, got ['txt']"),
    ('{"text": 3}\n', 'in.jsonl:1: "text" must be a string, got int'),
    ('{"text": "good", "text_b": " "}\n', 'in.jsonl:1: "text_b" is empty'),
    ('{"text": "good", "text_b": "bad"}\n{"text": "bad"}\n', "in.jsonl:2: a single text, but line 1 is a pair"),
])
def test_bad_json_lines_name_the_line(tmp_path, tiny_pair_export, capsys, content, message):
    (tmp_path / "in.jsonl").write_text(content)
    assert cli.main(["predict", "--model", str(tiny_pair_export), "--input", str(tmp_path / "in.jsonl")]) == 2
    assert message in capsys.readouterr().err


def test_a_library_call_logs_nothing_and_counts_truncation_in_its_result(tiny_exports, caplog):
    predictor = Predictor(tiny_exports[(1.0, True)], threads=1)
    caplog.set_level("DEBUG", logger="paddle_dynafast")
    for _ in range(2):
        result = predictor.predict(["w1 " * 40 + "good"])
        assert result.truncated == 1
    features, truncated = predictor.encode(["w1 " * 40, "good", "w2 " * 40])
    assert truncated == 2 and [f.truncated for f in features] == [True, False, True]
    assert caplog.records == []
