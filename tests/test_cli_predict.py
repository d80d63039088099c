"""The predict command: its flags become the PredictConfig; the JSON lines out, and one summary line of its own
(truncation counted once, not logged by the library call)."""
import json
import re

import numpy as np
import pytest

from paddle_dynafast import cli
from paddle_dynafast.config import PredictConfig, RuntimeConfig
from paddle_dynafast.runtime.predictor import Predictor


def test_flags_reach_the_predict_config():
    parse = cli.build_parser().parse_args
    assert cli.predict.config_from_args(parse(["predict", "--model", "m"])) == PredictConfig("m")
    args = parse(["predict", "--model", "m", "--input", "in.tsv", "--labeled", "--jsonl", "--output", "out.jsonl",
                  "--speed", "0.3", "--batch-size", "4", "--runtime", "onnxruntime", "--precision", "int8",
                  "--threads", "1"])
    assert cli.predict.config_from_args(args) == PredictConfig(
        "m", "in.tsv", True, True, "out.jsonl", 0.3, 4, RuntimeConfig("onnxruntime", 1, "int8"))
    with pytest.raises(ValueError, match=r"speed 1.5 is not in \[0, 1\]"):
        cli.predict.config_from_args(parse(["predict", "--model", "m", "--speed", "1.5"]))


def test_the_command_writes_json_lines_and_logs_one_summary(tmp_path, tiny_exports, capsys):
    (tmp_path / "in.txt").write_text("1 " + "w1 " * 40 + "good\n0 bad w2\n")
    directory = tiny_exports[(1.0, True)]
    assert cli.main(["predict", "--model", str(directory), "--input", str(tmp_path / "in.txt"), "--labeled",
                     "--speed", "0.3", "--threads", "1", "--runtime", "paddle-inference"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    expected = Predictor(directory, "paddle-inference", threads=1).predict(["w1 " * 40 + "good", "bad w2"], speed=0.3)
    assert [line["label"] for line in lines] == expected.labels and expected.truncated == 1
    assert [line["exit_layer"] for line in lines] == expected.exit_layer.tolist()
    accuracy = 100 * sum(p == g for p, g in zip(expected.labels, ["1", "0"])) / 2
    summary = (f"2 texts, mean exit layer {expected.exit_layer.mean():.2f}, 1 truncated, accuracy {accuracy:.2f}")
    assert re.findall(r"INFO paddle_dynafast: (.*)", captured.err) == [summary]
    assert "truncated 1 of" not in captured.err


def test_a_long_input_streams_through_in_chunks_written_as_they_are_made(tiny_exports, monkeypatch, capsys):
    """Issue 24 item 6: no more than one chunk (64 batches) is read ahead of what is written, so memory is bounded
    whatever the input's length; every line comes out, in input order, as Predictor gives it."""
    pulled, writes = [], []
    texts = [f"w{i % 90} {'good' if i % 3 else 'bad'} w{(7 * i) % 90}" for i in range(700)]

    class Stdin:
        def __init__(self):
            self.buffer = self.lines()

        def lines(self):
            for text in texts:
                pulled.append(text)
                yield (text + "\n").encode()

    class Stdout:
        lines: list = []

        def write(self, text):
            writes.append((len(pulled), len(self.lines)))
            self.lines.extend(text.splitlines())

        def flush(self):
            pass

    out = Stdout()
    monkeypatch.setattr("sys.stdin", Stdin())
    monkeypatch.setattr("sys.stdout", out)
    directory = tiny_exports[(1.0, True)]
    assert cli.main(["predict", "--model", str(directory), "--batch-size", "2", "--threads", "1", "--runtime",
                     "paddle-inference"]) == 0
    chunk = 2 * cli.predict.CHUNK_BATCHES
    assert len(writes) == -(-700 // chunk) and all(read - done <= chunk for read, done in writes)
    assert writes[0] == (chunk, 0)  # the first lines were out when one chunk had been read
    expected = Predictor(directory, "paddle-inference", threads=1).predict(texts, batch_size=32)
    lines = [json.loads(line) for line in out.lines]
    np.testing.assert_allclose([line["probs"] for line in lines], expected.probs, atol=2e-6)
    assert [line["exit_layer"] for line in lines] == expected.exit_layer.tolist()
    assert "700 texts, mean exit layer" in capsys.readouterr().err


def test_the_progress_bar_counts_texts_and_no_probability_prints_unless_finite(tmp_path, tiny_exports):
    import io

    from tqdm import tqdm

    from paddle_dynafast.data.readers import Example
    from paddle_dynafast.errors import ArtifactError
    from paddle_dynafast.runtime.predictor import Prediction

    for name, content, count in (("a.txt", "x\ny\n", 2), ("b.txt", "x\ny", 2), ("c.tsv", "label\ttext_a\n1\tx\n", 1),
                                 ("d.txt", "", 0)):
        (tmp_path / name).write_text(content)
        assert cli.predict.count_lines(str(tmp_path / name)) == count
    assert cli.predict.count_lines(None) is None
    predictor = Predictor(tiny_exports[(1.0, True)], "paddle-inference", threads=1)
    examples = [Example(f"w{i} good", None, None, f"in.txt:{i + 1}") for i in range(70)]
    bar = tqdm(total=70, file=io.StringIO(), disable=False)
    out = io.StringIO()
    tally = cli.predict.predict_stream(predictor, examples, out, batch_size=1, bar=bar)
    assert bar.n == 70 and tally.texts == 70 and len(out.getvalue().splitlines()) == 70
    nan = Prediction(["0", "1"], np.array([0, 1]), np.array([[0.5, 0.5], [np.nan, np.nan]], "float32"),
                     np.array([2, 2]), 0)
    with pytest.raises(ArtifactError, match=r"^in.txt:2: the model gave probabilities that are not finite \(NaN or "
                                            r"infinity\): its weights are damaged$"):
        cli.predict.json_lines(examples[:2], nan)


@pytest.mark.slow
def test_a_file_of_100_000_lines_streams_through_in_bounded_memory(tmp_path, tiny_exports):
    """Issue 24 item 6, measured: the peak memory of ``predict`` on 100 000 lines is that of 10 000 (the whole input
    held at once, as before streaming, took 70 MB more here); every line comes out. About two minutes."""
    import random
    import subprocess
    import sys

    rng, words = random.Random(0), ["good", "bad"] + [f"w{i}" for i in range(92)]
    peaks = {}
    for count in (10_000, 100_000):
        source = tmp_path / f"in{count}.txt"
        source.write_text("".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) + "\n"
                                  for _ in range(count)))
        run = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
               "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", run, sys.executable, "-m", "paddle_dynafast", "predict",
                               "--model", str(tiny_exports[(0.5, True)]), "--input", str(source), "--output",
                               str(tmp_path / f"out{count}.jsonl"), "--threads", "1", "--runtime", "onnxruntime",
                               "--batch-size", "64"], capture_output=True, text=True, timeout=900)
        code, peak = done.stdout.split()
        assert code == "0", done.stderr[-2000:]
        peaks[count] = int(peak) / 1024  # MB
        assert len((tmp_path / f"out{count}.jsonl").read_text().splitlines()) == count
    assert peaks[100_000] - peaks[10_000] < 25, peaks
