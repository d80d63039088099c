"""Every example runs (on a tiny model and toy data) through the public API."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers import pairs_of, write_sentiment_data

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_finetune_example(tmp_path, tiny_hf_dir):
    write_sentiment_data(tmp_path / "data", n_train=64, n_dev=16, n_test=16)
    result = subprocess.run([sys.executable, str(EXAMPLES / "finetune_minilm.py"), "--model", str(tiny_hf_dir),
                             "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
                             "--max-steps", "3"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dev accuracy" in result.stdout and (tmp_path / "out" / "model.safetensors").is_file()


def test_deploy_example_stands_alone(tmp_path, tiny_dynafast_dir):
    from paddle_dynafast.config import ExportConfig
    from paddle_dynafast.runtime.export import export_model
    from paddle_dynafast.runtime.predictor import Predictor

    out = export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "export", width=0.5))
    texts = ["good w1 w2", "w3 bad w4 w5 w6"]
    code = ("import sys, runpy; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
            "assert not any(m.startswith('paddle_dynafast') for m in sys.modules), 'imported paddle_dynafast'")
    result = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "deploy_paddle_inference.py"), "--model",
                             str(out), "--speed", "0.3", "--threads", "1", *texts],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = Predictor(out, threads=1).predict(texts, speed=0.3)
    assert [line["label"] for line in lines] == expected.labels
    assert [line["exit_layer"] for line in lines] == expected.exit_layer.tolist()
    np.testing.assert_allclose([line["probs"] for line in lines], expected.probs, atol=1e-4)


def test_deploy_example_feeds_pairs_with_their_token_types(tiny_pair_export, pair_data):
    from paddle_dynafast.runtime.predictor import Predictor

    a, b, _ = pairs_of(pair_data, 6)
    a[0] = " ".join(["w1"] * 30) + " good"  # cut longest first, as in training
    pairs = [arg for x, y in zip(a, b) for arg in ("--pair", x, y)]
    result = subprocess.run([sys.executable, str(EXAMPLES / "deploy_paddle_inference.py"), "--model",
                             str(tiny_pair_export), "--speed", "0.3", "--threads", "1", "good w1", *pairs],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("text_b") for line in lines] == [None] + b
    predictor = Predictor(tiny_pair_export, threads=1)
    expected = predictor.predict(a, speed=0.3, text_b=b)
    np.testing.assert_allclose([line["probs"] for line in lines[1:]], expected.probs, atol=1e-4)
    assert [line["exit_layer"] for line in lines[1:]] == expected.exit_layer.tolist()
    np.testing.assert_allclose(lines[0]["probs"], predictor.predict(["good w1"], speed=0.3).probs[0], atol=1e-4)


def test_tutorial_example(tmp_path, tiny_hf_dir, toy_data):
    result = subprocess.run([sys.executable, str(EXAMPLES / "dynabert_fastbert_sst2.py"), "--model", str(tiny_hf_dir),
                             "--data-dir", str(toy_data), "--output", str(tmp_path / "out"), "--max-seq-len", "16",
                             "--steps", "4"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "supernet width 0.25: dev accuracy" in result.stdout and "width 0.5 speed 0.3" in result.stdout
    from paddle_dynafast.model.dynafast import DynaFastModel

    assert DynaFastModel.load(tmp_path / "out").widths == (1.0, 0.75, 0.5, 0.25)
