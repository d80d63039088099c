"""Dynamic batching: one worker thread owns the runtime and runs queued requests together.

Paddle Inference predictors are not thread-safe, so one worker thread owns the
runtime; any thread may :meth:`Batcher.submit` a request. The worker takes the
oldest waiting request and lets others arrive until ``batch_window_ms`` after it
came (or until ``max_batch_size`` texts of its kind wait), then runs every
waiting request of the same speed (and the same kind, pairs or single texts),
oldest first, as one call: tokenised together, grouped by length, each caller
handed its own rows. A speed is an input of the exported program, one per call,
so requests with another speed wait for the next batch. Under load the worker is
busy while the queue fills, and batches grow without any waiting.
``batching=False`` runs every request alone.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Deque, List, Optional

from ..config import ServeConfig
from .predictor import Predictor
from .serve_metrics import Metrics

logger = logging.getLogger(__name__)


class BatcherClosed(RuntimeError):
    """A request submitted after :meth:`Batcher.close`."""


@dataclass(frozen=True)
class PredictRequest:
    """A checked ``POST /predict`` body."""

    texts: List[str]
    text_b: Optional[List[str]]
    """One second text per text (sentence pairs), or None."""
    speed: float

    @property
    def key(self) -> tuple:
        """Requests with the same key can share a batch: one speed per call, pairs apart from single texts."""
        return self.speed, self.text_b is not None


@dataclass
class _Job:
    request: PredictRequest
    future: Future
    arrived: float
    """``time.perf_counter()`` when it was queued."""


class Batcher:
    """The worker thread that owns the runtime and runs queued requests in batches (see the module docstring).

    :meth:`submit` may be called from any thread; it returns a ``concurrent.futures.Future`` of the request's answer
    (a dict, the ``POST /predict`` response) or of the exception its batch raised.
    """

    def __init__(self, predictor: Predictor, config: ServeConfig, metrics: Optional[Metrics] = None):
        self.predictor, self.config = predictor, config
        self.metrics = metrics if metrics is not None else Metrics()
        self._pending: Deque[_Job] = deque()
        self._condition = threading.Condition()
        self._closing = False
        self._batches = 0
        self._thread = threading.Thread(target=self._work, name="paddle-dynafast-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: Optional[float] = None) -> None:
        """Run what is queued, then stop the worker; later submissions are refused with 503."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def queued(self) -> int:
        with self._condition:
            return len(self._pending)

    def submit(self, request: PredictRequest) -> Future:
        job = _Job(request, Future(), time.perf_counter())
        with self._condition:
            if self._closing:
                raise BatcherClosed("the server is shutting down")
            self._pending.append(job)
            self._condition.notify_all()
        return job.future

    def _work(self) -> None:
        while True:
            jobs = self._next_batch()
            if jobs is None:
                return
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]  # callers that gave up
            if jobs:
                self._run(jobs)

    def _next_batch(self) -> Optional[List[_Job]]:
        """The oldest request and those that may join it, once its window is over or its batch is full; None when
        closing with nothing queued."""
        window, limit = self.config.batch_window_ms / 1000, self.config.max_batch_size
        with self._condition:
            while not self._pending:
                if self._closing:
                    return None
                self._condition.wait()
            first = self._pending[0]
            if self.config.batching:
                while not self._closing and self._waiting_texts(first.request.key) < limit:
                    left = first.arrived + window - time.perf_counter()
                    if left <= 0:
                        break
                    self._condition.wait(left)
            jobs, kept, size, full = [], deque(), 0, False
            for job in self._pending:
                n = len(job.request.texts)
                if not jobs or (self.config.batching and not full and job.request.key == first.request.key
                                and size + n <= limit):
                    jobs.append(job)
                    size += n
                else:
                    full = full or job.request.key == first.request.key  # the same kind stays in order
                    kept.append(job)
            self._pending = kept
            return jobs

    def _waiting_texts(self, key: tuple) -> int:
        return sum(len(job.request.texts) for job in self._pending if job.request.key == key)

    def _run(self, jobs: List[_Job]) -> None:
        """One call of the predictor on every text of ``jobs``; each job gets its own rows (or the exception)."""
        started = time.perf_counter()
        first = jobs[0].request
        texts = [t for job in jobs for t in job.request.texts]
        text_b = None if first.text_b is None else [t for job in jobs for t in job.request.text_b]
        try:
            features, _ = self.predictor.encode(texts, text_b)
            result = self.predictor.run_features(features, first.speed, self.config.max_batch_size)
        except Exception as error:  # answered with a 500 by each caller; the worker goes on
            logger.error("a batch of %d request(s) failed", len(jobs), exc_info=True)
            for job in jobs:
                job.future.set_exception(error)
            return
        self._batches += 1
        self.metrics.batch(len(jobs), result.exit_layer)
        offset = 0
        for job in jobs:
            rows = range(offset, offset + len(job.request.texts))
            offset += len(rows)
            job.future.set_result({
                "predictions": [{"label": result.labels[i], "probs": [float(p) for p in result.probs[i]],
                                 "exit_layer": int(result.exit_layer[i]), "truncated": features[i].truncated}
                                for i in rows],
                "speed": first.speed})
        logger.debug("batch %d: %d request(s), %d text(s)%s, speed %g, waited %.1f ms, ran %.1f ms, mean exit layer "
                     "%.2f, %d queued", self._batches, len(jobs), len(texts), " (pairs)" if text_b else "",
                     first.speed, 1000 * (started - jobs[0].arrived), 1000 * (time.perf_counter() - started),
                     float(result.exit_layer.mean()), self.queued)
