"""A deployment install: ``pip install -c requirements.txt ".[serve]"`` in a fresh virtual environment holds
neither PaddleNLP, PaddleSlim, paddle2onnx nor OpenCV, and serves an export with ONNX Runtime and with Paddle
Inference, answering as Predictor does here; ``predict`` works there too, and ``--help`` names the commands it lacks.
Slow: it installs Paddle and ONNX Runtime from the package index (8 minutes here on 2 busy cores, nearly all of it
pip; the environment takes 1.1 GB)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from helpers import free_port, wait_until_healthy

from paddle_dynafast.runtime.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = {"paddlenlp", "paddleslim", "paddle2onnx", "opencv-python", "opencv-python-headless", "visualdl"}
NEEDED = {"paddlepaddle", "onnxruntime", "fastapi", "uvicorn", "httptools", "uvloop", "orjson", "prometheus-client",
          "tokenizers", "numpy"}


@pytest.mark.slow
def test_a_serving_install_serves_an_export_without_the_training_libraries(tmp_path, tiny_exports):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c",
                           str(ROOT / "requirements.txt"), f"{ROOT}[serve]"], capture_output=True, text=True,
                          timeout=1800, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run([python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
                            capture_output=True, text=True, env=env, check=True).stdout
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    assert not LEFT_OUT & installed and NEEDED <= installed, sorted(installed)

    export = tiny_exports[(0.5, True)]
    texts = ["good w1 w2", "bad w3", "w4 w5 good bad"]
    helped = subprocess.run([python, "-m", "paddle_dynafast", "--help"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert helped.returncode == 0 and "Not installed here: train, evaluate, calibrate, export, pipeline" in " ".join(
        helped.stdout.split()), helped.stdout
    predicted = subprocess.run([python, "-m", "paddle_dynafast", "predict", "--model", str(export), "--runtime",
                                "onnxruntime", "--threads", "1"], input="\n".join(texts) + "\n", capture_output=True,
                               text=True, env=env, cwd=tmp_path, timeout=300)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    expected = Predictor(export, runtime="onnxruntime", threads=1).predict(texts)
    assert [json.loads(line)["label"] for line in predicted.stdout.splitlines()] == expected.labels

    for runtime, precision in (("onnxruntime", "int8"), ("paddle-inference", "fp32")):
        port = free_port()
        server = subprocess.Popen([python, "-m", "paddle_dynafast", "serve", "--model", str(export), "--port",
                                   str(port), "--runtime", runtime, "--precision", precision, "--threads", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_healthy(server, url, seconds=300)
            answer = httpx.post(url + "/predict", json={"texts": texts, "speed": 0.3}, timeout=60).json()
            assert "paddle_dynafast_requests_total" in httpx.get(url + "/metrics", timeout=10).text
        finally:
            server.terminate()
            server.wait(timeout=60)
        reference = Predictor(export, runtime=runtime, precision=precision, threads=1).predict(texts, speed=0.3)
        assert [p["label"] for p in answer["predictions"]] == reference.labels
        np.testing.assert_allclose([p["probs"] for p in answer["predictions"]], reference.probs, atol=1e-5)
        assert [p["exit_layer"] for p in answer["predictions"]] == reference.exit_layer.tolist()
