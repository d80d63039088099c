"""What a server counts: requests by status, batch sizes, latency, the exit-layer histogram, connections.

Two views of the same counts: :meth:`Metrics.prometheus`, Prometheus' text format (``GET /metrics``, what every
serving stack scrapes, written by ``prometheus_client``), and :meth:`Metrics.snapshot`, a JSON object with latency
percentiles over the most recent answers (``GET /metrics.json``).

With several server processes (``serve --workers N``) each process counts its own; the Prometheus view adds them up
over every process (``prometheus_client``'s multiprocess mode, in the directory ``PROMETHEUS_MULTIPROC_DIR`` names,
which ``serve`` makes), the JSON view is the answering process's own (it names its ``pid``).
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from typing import Any, Deque, Dict, Optional

import numpy as np

LATENCY_WINDOW = 10_000
"""Latency percentiles (JSON view) are over this many most recent answered requests."""

CLIENT_GONE = 499
"""The status a request is counted under when its client went away before its answer (nginx's convention)."""

PREFIX = "paddle_dynafast"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """What ``GET /metrics`` reports; updated from the event loop and the worker alike."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter as PCounter, Gauge, Histogram

        self._lock = threading.Lock()
        self.started = time.time()
        self.status: Counter = Counter()
        """Answered requests by HTTP status (:data:`CLIENT_GONE` for a client that went away)."""
        self.texts = 0
        self.batch_texts: Counter = Counter()
        """Batches by their number of texts."""
        self.batch_requests: Counter = Counter()
        """Batches by their number of requests."""
        self.exit_layers: Counter = Counter()
        """Texts by the layer they left at."""
        self.latency: Deque[float] = deque(maxlen=LATENCY_WINDOW)
        """Seconds from arrival to answer of the most recent successful requests."""
        self.connections: Counter = Counter()
        """Connections closed by the server, by reason (idle, evicted, refused)."""
        self.open_connections = 0

        self.registry = CollectorRegistry(auto_describe=True)
        multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        live = {"multiprocess_mode": "livesum"} if multiprocess else {}
        r = self.registry
        self._requests = PCounter(f"{PREFIX}_requests", "Answered requests by HTTP status (499: the client went away)",
                                  ["status"], registry=r)
        self._texts = PCounter(f"{PREFIX}_texts", "Texts run by the model", registry=r)
        self._batch_texts = Histogram(f"{PREFIX}_batch_texts", "Texts per batch", buckets=SIZE_BUCKETS, registry=r)
        self._batch_requests = Histogram(f"{PREFIX}_batch_requests", "Requests per batch", buckets=SIZE_BUCKETS,
                                         registry=r)
        self._exit_layer = PCounter(f"{PREFIX}_exit_layer_texts", "Texts by the layer they left the model at",
                                    ["layer"], registry=r)
        self._latency = Histogram(f"{PREFIX}_request_latency_seconds", "Seconds from a request's arrival to its "
                                  "answer (successful requests)", buckets=LATENCY_BUCKETS, registry=r)
        self._closed = PCounter(f"{PREFIX}_connections_closed", "Connections the server closed, by reason",
                                ["reason"], registry=r)
        self._open = Gauge(f"{PREFIX}_open_connections", "Open HTTP connections", registry=r, **live)
        self._queued = Gauge(f"{PREFIX}_queued_requests", "Requests waiting for a batch", registry=r, **live)
        self._up = Gauge(f"{PREFIX}_worker_up", "1 while the batching worker runs", registry=r, **live)
        self._up.set(1)
        self._multiprocess = multiprocess

    # ------------------------------------------------------------------ counting

    def answered(self, status: int, seconds: Optional[float] = None) -> None:
        with self._lock:
            self.status[status] += 1
            if seconds is not None:
                self.latency.append(seconds)
        self._requests.labels(str(status)).inc()
        if seconds is not None:
            self._latency.observe(seconds)

    def batch(self, requests: int, exit_layer: np.ndarray) -> None:
        layers = Counter(int(layer) for layer in exit_layer)
        with self._lock:
            self.texts += len(exit_layer)
            self.batch_texts[len(exit_layer)] += 1
            self.batch_requests[requests] += 1
            self.exit_layers.update(layers)
        self._texts.inc(len(exit_layer))
        self._batch_texts.observe(len(exit_layer))
        self._batch_requests.observe(requests)
        for layer, n in layers.items():
            self._exit_layer.labels(str(layer)).inc(n)

    def connection(self, opened: int = 0, closed: Optional[str] = None) -> None:
        """A connection opened (``opened`` 1), went (``opened`` -1), or was closed by the server for ``closed``."""
        with self._lock:
            self.open_connections += opened
            if closed is not None:
                self.connections[closed] += 1
        if opened:
            self._open.inc(opened)
        if closed is not None:
            self._closed.labels(closed).inc()

    def worker_stopped(self) -> None:
        self._up.set(0)

    # ------------------------------------------------------------------ the two views

    def prometheus(self, queued: int = 0) -> bytes:
        """Prometheus' text format of every count, over every process with ``--workers``."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        self._queued.set(queued)
        if not self._multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def snapshot(self, queued: int = 0) -> Dict[str, Any]:
        with self._lock:
            latency = np.array(self.latency) * 1000
            batches = sum(self.batch_texts.values())
            layers = sum(self.exit_layers.values())
            return {
                "pid": os.getpid(),
                "uptime_seconds": round(time.time() - self.started, 1),
                "requests": {"total": sum(self.status.values()), "ok": self.status[200],
                             "client_errors": sum(n for s, n in self.status.items()
                                                  if 400 <= s < 500 and s != CLIENT_GONE),
                             "client_gone": self.status[CLIENT_GONE],
                             "server_errors": sum(n for s, n in self.status.items() if s >= 500),
                             "by_status": {str(s): n for s, n in sorted(self.status.items())}},
                "connections": {"open": self.open_connections, "closed": dict(sorted(self.connections.items()))},
                "queued_requests": queued,
                "texts": self.texts,
                "batches": batches,
                "batch_texts": {"mean": round(self.texts / batches, 3) if batches else None,
                                "histogram": {str(k): n for k, n in sorted(self.batch_texts.items())}},
                "batch_requests": {
                    "mean": round(sum(k * n for k, n in self.batch_requests.items()) / batches, 3) if batches else None,
                    "histogram": {str(k): n for k, n in sorted(self.batch_requests.items())}},
                "latency_ms": {"requests": len(latency),
                               **{f"p{q}": round(float(np.percentile(latency, q)), 3) if len(latency) else None
                                  for q in (50, 90, 99)}},
                "exit_layer": {"mean": round(sum(k * n for k, n in self.exit_layers.items()) / layers, 3)
                               if layers else None,
                               "histogram": {str(k): n for k, n in sorted(self.exit_layers.items())}},
            }
