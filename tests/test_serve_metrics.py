"""What a server counts: requests by status, texts, batch sizes by texts and by requests, latency percentiles over
the most recent answers, the exit-layer histogram, connections; every mean and percentile checked against NumPy, and
the Prometheus view parsed with prometheus_client's parser against the JSON view."""
import os
import threading

import numpy as np

from paddle_dynafast.runtime import serve_metrics
from paddle_dynafast.runtime.serve_metrics import Metrics


def test_an_empty_snapshot():
    snapshot = Metrics().snapshot()
    assert snapshot["requests"] == {"total": 0, "ok": 0, "client_errors": 0, "client_gone": 0, "server_errors": 0,
                                    "by_status": {}}
    assert snapshot["connections"] == {"open": 0, "closed": {}} and snapshot["pid"] == os.getpid()
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
    for status in (422, 413, 422, 500, 503, 499):
        metrics.answered(status)  # errors carry no latency; 499: the client went away
    metrics.batch(3, np.array([1, 2, 2, 2]))  # 3 requests, 4 texts
    metrics.batch(1, np.array([1]))
    metrics.batch(2, np.array([2, 2, 1]))
    snapshot = metrics.snapshot(queued=5)
    assert snapshot["requests"] == {"total": 10, "ok": 4, "client_errors": 3, "client_gone": 1, "server_errors": 2,
                                    "by_status": {"200": 4, "413": 1, "422": 2, "499": 1, "500": 1, "503": 1}}
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


def test_the_prometheus_view_has_the_same_counts():
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics()
    for seconds in (0.003, 0.02, 0.4):
        metrics.answered(200, seconds)
    metrics.answered(499)
    metrics.batch(2, np.array([1, 2, 2]))
    metrics.connection(opened=1)
    metrics.connection(opened=1)
    metrics.connection(opened=-1, closed="idle")
    families = {f.name: f for f in text_string_to_metric_families(metrics.prometheus(queued=4).decode())}

    def values(name, label=None):
        return {(s.labels.get(label) if label else s.name): s.value for s in families[name].samples
                if not s.name.endswith("_created")}

    assert values("paddle_dynafast_requests", "status") == {"200": 3.0, "499": 1.0}
    assert values("paddle_dynafast_exit_layer_texts", "layer") == {"1": 1.0, "2": 2.0}
    assert values("paddle_dynafast_connections_closed", "reason") == {"idle": 1.0}
    assert values("paddle_dynafast_open_connections") == {"paddle_dynafast_open_connections": 1.0}
    assert values("paddle_dynafast_queued_requests") == {"paddle_dynafast_queued_requests": 4.0}
    latency = {s.labels.get("le"): s.value for s in families["paddle_dynafast_request_latency_seconds"].samples
               if s.name.endswith("_bucket")}
    assert (latency["0.0025"], latency["0.005"], latency["0.025"], latency["0.5"], latency["+Inf"]) == (0, 1, 2, 3, 3)
    assert metrics.snapshot()["connections"] == {"open": 1, "closed": {"idle": 1}}
    metrics.worker_stopped()
    assert "paddle_dynafast_worker_up 0.0" in metrics.prometheus().decode()
