"""Locust load of ``paddle-dynafast serve`` (the standard load generator beside benchmarks/serve_load.py):
``FastHttpUser`` clients, each posting one request after another with no wait, ``LOCUST_TEXTS_PER_REQUEST`` texts of
the data set's test split at ``LOCUST_SPEED``; with ``LOCUST_EXPECTED`` (``{text: [label, probs]}``, written by
``serve_load.py --expected-out``) every answer is checked against Predictor's for its own text (within
``LOCUST_ATOL``, default 1e-4) and a wrong one is a failure.

    paddle-dynafast serve --model runs/sst2/export --runtime onnxruntime --precision int8 --threads 2 --port 8189 &
    LOCUST_DATA=../shared/data/sst2 LOCUST_TEXTS_PER_REQUEST=1 LOCUST_SPEED=0 \\
        LOCUST_EXPECTED=runs/serve-load/expected-0.json \\
        locust -f benchmarks/locustfile.py --headless -u 16 -r 16 -t 60s --host http://127.0.0.1:8189 \\
        --only-summary --csv runs/locust/speed-0
"""
import csv
import json
import os
import random
from pathlib import Path

from locust import FastHttpUser, constant, task


def _texts(directory: Path):
    """The test split's texts: ``LABEL TEXT`` lines (.txt) or a .tsv with a ``text_a`` column."""
    for name in ("test.txt", "test.tsv", "dev.txt", "dev.tsv"):
        path = directory / name
        if path.is_file():
            break
    else:
        raise SystemExit(f"{directory} has no test or dev split")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        if path.suffix == ".tsv":
            return [row["text_a"] for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
        return [line.rstrip("\n").split(" ", 1)[1] for line in f if " " in line.strip()]


TEXTS = _texts(Path(os.environ.get("LOCUST_DATA", "../shared/data/sst2")))
PER_REQUEST = int(os.environ.get("LOCUST_TEXTS_PER_REQUEST", "1"))
SPEED = float(os.environ.get("LOCUST_SPEED", "0"))
ATOL = float(os.environ.get("LOCUST_ATOL", "1e-4"))
EXPECTED = json.loads(Path(os.environ["LOCUST_EXPECTED"]).read_text()) if os.environ.get("LOCUST_EXPECTED") else None
if EXPECTED is not None:  # only texts whose answer is known (serve_load sends clients x requests of the split)
    TEXTS = [text for text in TEXTS if text in EXPECTED]


class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        start = random.randrange(0, len(TEXTS) - PER_REQUEST + 1)
        texts = TEXTS[start:start + PER_REQUEST]
        with self.client.post("/predict", json={"texts": texts, "speed": SPEED}, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
                return
            predictions = response.json()["predictions"]
            if len(predictions) != len(texts):
                response.failure(f"{len(predictions)} predictions for {len(texts)} texts")
                return
            if EXPECTED is not None:
                for text, prediction in zip(texts, predictions):
                    label, probs = EXPECTED[text]
                    if prediction["label"] != label or max(abs(a - b) for a, b in zip(prediction["probs"], probs)) > ATOL:
                        response.failure(f"the answer to {text!r} is {prediction}, Predictor says {label} {probs}")
                        return
            response.success()
