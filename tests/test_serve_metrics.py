"""What a server counts: requests by status, texts, batch sizes by texts and by requests, latency percentiles over
the most recent answers, the exit-layer histogram; every mean and percentile checked against NumPy."""
import threading

import numpy as np

from paddle_dynafast.runtime import serve_metrics
from paddle_dynafast.runtime.serve_metrics import Metrics


def test_an_empty_snapshot():
    snapshot = Metrics().snapshot()
    assert snapshot["requests"] == {"total": 0, "ok": 0, "client_errors": 0, "server_errors": 0, "by_status": {}}
    assert (snapshot["texts"], snapshot["batches"], snapshot["queued_requests"]) == (0, 0, 0)
    assert snapshot["batch_texts"] == {"mean": None, "histogram": {}}
    assert snapshot["batch_requests"] == {"mean": None, "histogram": {}}
    assert snapshot["latency_ms"] == {"requests": 0, "p50": None, "p90": None, "p99": None}
    assert snapshot["exit_layer"] == {"mean": None, "histogram": {}} and snapshot["uptime_seconds"] >= 0


def test_the_counts_of_a_few_requests_and_batches():
    metrics = Metrics()
    latencies = [0.010, 0.020, 0.030, 0.250]
    for seconds in latencies:
        metrics.answered(200, seconds)
    for status in (422, 413, 422, 500, 503):
        metrics.answered(status)  # errors carry no latency
    metrics.batch(3, np.array([1, 2, 2, 2]))  # 3 requests, 4 texts
    metrics.batch(1, np.array([1]))
    metrics.batch(2, np.array([2, 2, 1]))
    snapshot = metrics.snapshot(queued=5)
    assert snapshot["requests"] == {"total": 9, "ok": 4, "client_errors": 3, "server_errors": 2,
                                    "by_status": {"200": 4, "413": 1, "422": 2, "500": 1, "503": 1}}
    assert (snapshot["texts"], snapshot["batches"], snapshot["queued_requests"]) == (8, 3, 5)
    assert snapshot["batch_texts"] == {"mean": round(8 / 3, 3), "histogram": {"1": 1, "3": 1, "4": 1}}
    assert snapshot["batch_requests"] == {"mean": 2.0, "histogram": {"1": 1, "2": 1, "3": 1}}
    ms = 1000 * np.array(latencies)
    assert snapshot["latency_ms"] == {"requests": 4, **{f"p{q}": round(float(np.percentile(ms, q)), 3)
                                                        for q in (50, 90, 99)}}
    assert snapshot["latency_ms"]["p50"] == 25.0
    assert snapshot["exit_layer"] == {"mean": round(13 / 8, 3), "histogram": {"1": 3, "2": 5}}


def test_latency_is_over_the_most_recent_window(monkeypatch):
    monkeypatch.setattr(serve_metrics, "LATENCY_WINDOW", 3)
    metrics = Metrics()
    for seconds in (9.0, 0.001, 0.002, 0.003):
        metrics.answered(200, seconds)
    snapshot = metrics.snapshot()
    assert snapshot["latency_ms"]["requests"] == 3 and snapshot["latency_ms"]["p99"] < 3.1  # the 9 s fell out
    assert snapshot["requests"]["ok"] == 4  # the counts are not windowed


def test_counting_from_many_threads_loses_nothing():
    metrics = Metrics()

    def answer():
        for _ in range(500):
            metrics.answered(200, 0.001)
            metrics.batch(1, np.array([2]))

    workers = [threading.Thread(target=answer) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    snapshot = metrics.snapshot()
    assert snapshot["requests"]["ok"] == snapshot["batches"] == snapshot["texts"] == 2000
    assert snapshot["exit_layer"]["histogram"] == {"2": 2000}
