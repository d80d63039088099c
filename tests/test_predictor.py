"""Predictions for texts on any runtime: input order, batch sizes, clear errors; and the predict command."""
import json

import numpy as np
import pytest

from helpers import texts_of
from paddle_dynafast import cli
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
    assert code == 2 and "in.txt:2: empty line (1 in all)" in capsys.readouterr().err


def _predict(*args):
    return cli.main(["predict", *map(str, args), "--threads", "1"])


def test_predict_refuses_sentence_pairs_by_name(tmp_path, tiny_exports, capsys):
    (tmp_path / "pairs.tsv").write_text("label\ttext_a\ttext_b\n1\tgood w1\tw2 w3\n")
    assert _predict("--model", tiny_exports[(1.0, True)], "--input", tmp_path / "pairs.tsv") == 2
    err = capsys.readouterr().err
    assert "pairs.tsv has a text_b column (sentence pairs); predict takes single texts for now" in err


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
