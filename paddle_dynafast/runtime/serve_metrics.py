"""What a server counts: requests by status, batch sizes, latency percentiles, the exit-layer histogram."""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any, Deque, Dict, Optional

import numpy as np

LATENCY_WINDOW = 10_000
"""Latency percentiles are over this many most recent answered requests."""


class Metrics:
    """What ``GET /metrics`` reports; updated from the event loop and the worker alike."""

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.time()
        self.status: Counter = Counter()
        """Answered requests by HTTP status."""
        self.texts = 0
        self.batch_texts: Counter = Counter()
        """Batches by their number of texts."""
        self.batch_requests: Counter = Counter()
        """Batches by their number of requests."""
        self.exit_layers: Counter = Counter()
        """Texts by the layer they left at."""
        self.latency: Deque[float] = deque(maxlen=LATENCY_WINDOW)
        """Seconds from arrival to answer of the most recent successful requests."""

    def answered(self, status: int, seconds: Optional[float] = None) -> None:
        with self._lock:
            self.status[status] += 1
            if seconds is not None:
                self.latency.append(seconds)

    def batch(self, requests: int, exit_layer: np.ndarray) -> None:
        with self._lock:
            self.texts += len(exit_layer)
            self.batch_texts[len(exit_layer)] += 1
            self.batch_requests[requests] += 1
            self.exit_layers.update(int(layer) for layer in exit_layer)

    def snapshot(self, queued: int = 0) -> Dict[str, Any]:
        with self._lock:
            latency = np.array(self.latency) * 1000
            batches = sum(self.batch_texts.values())
            layers = sum(self.exit_layers.values())
            return {
                "uptime_seconds": round(time.time() - self.started, 1),
                "requests": {"total": sum(self.status.values()), "ok": self.status[200],
                             "client_errors": sum(n for s, n in self.status.items() if 400 <= s < 500),
                             "server_errors": sum(n for s, n in self.status.items() if s >= 500),
                             "by_status": {str(s): n for s, n in sorted(self.status.items())}},
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
