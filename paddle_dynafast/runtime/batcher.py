"""Dynamic batching: one worker thread owns the runtime and runs queued requests together.

Paddle Inference predictors are not thread-safe, so one worker thread owns the
runtime; any thread may :meth:`Batcher.submit` a request. A request is tokenised
when it is submitted (on the caller's thread: the server's event loop, while the
worker runs the previous batch), so the worker only pads, runs and hands out rows.
The worker takes the oldest waiting request and lets others arrive until
``batch_window_ms`` after it came (or until ``max_batch_size`` texts of its kind
wait), then runs every waiting request of the same speed (and the same kind,
pairs or single texts), oldest first, as one call, each caller handed its own
rows. A speed is an input of the exported program, one per call, so requests
with another speed wait for the next batch. Under load the worker is busy while
the queue fills, and batches grow without any waiting. ``batching=False`` runs
every request alone.

A batch that fails answers its callers with the error and the worker goes on. If
the worker itself dies (a bug), every waiting request is answered with
:class:`BatcherClosed`, later ones are refused, and ``on_death`` is called (the
server stops with an error): no request waits for a worker that is gone.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Sequence

import numpy as np

from ..config import ServeConfig
from ..data.encoding import Features
from .predictor import Predictor
from .serve_metrics import Metrics

logger = logging.getLogger(__name__)


class BatcherClosed(RuntimeError):
    """A request submitted after :meth:`Batcher.close`, or waiting when the worker died."""


class NotFinite(RuntimeError):
    """The model gave a probability that is not finite for a text of the request: answered with a 500 naming the
    text, never as a number (``NaN`` is not JSON, and orjson would write ``null``)."""


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


@dataclass(frozen=True)
class Answer:
    """The rows of one request: what ``POST /predict`` answers (:meth:`to_dict`)."""

    labels: List[str]
    probs: np.ndarray
    """``[texts, num_labels]`` float32"""
    exit_layer: np.ndarray
    """``[texts]``"""
    truncated: List[bool]
    speed: float

    def to_dict(self) -> dict:
        return {"predictions": [{"label": label, "probs": probs, "exit_layer": layer, "truncated": cut}
                                for label, probs, layer, cut in zip(self.labels, self.probs.tolist(),
                                                                    self.exit_layer.tolist(), self.truncated)],
                "speed": self.speed}


@dataclass
class _Job:
    request: PredictRequest
    features: List[Features]
    future: Future
    arrived: float
    """``time.perf_counter()`` when it was queued."""


class Batcher:
    """The worker thread that owns the runtime and runs queued requests in batches (see the module docstring).

    :meth:`submit` may be called from any thread; it returns a ``concurrent.futures.Future`` of the request's
    :class:`Answer` or of the exception its batch raised. ``on_death(error)`` is called from the worker if it dies.
    """

    def __init__(self, predictor: Predictor, config: ServeConfig, metrics: Optional[Metrics] = None,
                 on_death: Optional[Callable[[BaseException], None]] = None):
        self.predictor, self.config = predictor, config
        self.metrics = metrics if metrics is not None else Metrics()
        self.on_death = on_death
        self.failure: Optional[BaseException] = None
        """What killed the worker, if it died."""
        self._pending: Deque[_Job] = deque()
        self._condition = threading.Condition()
        self._closing = False
        self._batches = 0
        self._pad = predictor.tokenizer.pad_token_id
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
    def alive(self) -> bool:
        return self._thread.is_alive() and self.failure is None

    @property
    def queued(self) -> int:
        with self._condition:
            return len(self._pending)

    def submit(self, request: PredictRequest) -> Future:
        """Tokenise ``request`` here, on the caller's thread, and queue it; its answer comes in the future."""
        if self._closing or self.failure is not None:
            raise self._closed()
        features, _ = self.predictor.encode(request.texts, request.text_b)
        job = _Job(request, features, Future(), time.perf_counter())
        with self._condition:
            if self._closing or self.failure is not None:
                raise self._closed()
            self._pending.append(job)
            self._condition.notify_all()
        return job.future

    def _closed(self) -> BatcherClosed:
        if self.failure is not None:
            return BatcherClosed(f"the batching worker died ({type(self.failure).__name__}: {self.failure}); the "
                                 "server is stopping")
        return BatcherClosed("the server is shutting down")

    def _work(self) -> None:
        self._taken: List[_Job] = []  # out of the queue, not yet answered
        try:
            while True:
                jobs = self._next_batch()  # also in self._taken from the moment they leave the queue
                if jobs is None:
                    return
                self._taken = [job for job in jobs if job.future.set_running_or_notify_cancel()]  # gave up: dropped
                if self._taken:
                    self._run(self._taken)
                self._taken = []
        except BaseException as error:  # a bug in the worker: nobody may wait for it
            self._die(error)

    def _die(self, error: BaseException) -> None:
        logger.critical("the batching worker died; refusing requests from now on", exc_info=error)
        with self._condition:
            self.failure = error
            waiting, self._pending = list(self._pending), deque()
        self.metrics.worker_stopped()
        for job in self._taken:
            if not job.future.done():
                job.future.set_running_or_notify_cancel()  # False if it was already running or cancelled
                if not job.future.done():
                    job.future.set_exception(self._closed())
        for job in waiting:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(self._closed())
        if self.on_death is not None:
            self.on_death(error)

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
            self._pending, self._taken = kept, jobs
            return jobs

    def _waiting_texts(self, key: tuple) -> int:
        return sum(len(job.request.texts) for job in self._pending if job.request.key == key)

    def _run(self, jobs: List[_Job]) -> None:
        """The runtime on every text of ``jobs``; each job gets its own rows (or the exception)."""
        started = time.perf_counter()
        speed = jobs[0].request.speed
        features = [f for job in jobs for f in job.features]
        try:
            probs, exit_layer = self._predict(features, speed)
        except Exception as error:  # answered with a 500 by each caller; the worker goes on
            logger.error("a batch of %d request(s) failed", len(jobs), exc_info=True)
            for job in jobs:
                job.future.set_exception(error)
            return
        self._batches += 1
        self.metrics.batch(len(jobs), exit_layer)
        labels = self.predictor.labels
        ids = probs.argmax(-1).tolist()
        offset = 0
        finite = np.isfinite(probs).all(-1)  # [n]
        for job in jobs:
            rows = slice(offset, offset + len(job.features))
            offset = rows.stop
            if not finite[rows].all():
                bad = int(np.flatnonzero(~finite[rows])[0])
                logger.error("the model gave probabilities that are not finite for texts[%d] of a request: %s",
                             bad, probs[rows][bad].tolist())
                job.future.set_exception(NotFinite(f"the model gave probabilities that are not finite (NaN or "
                                                   f"infinity) for texts[{bad}]; the server log has them"))
                continue
            job.future.set_result(Answer([labels[i] for i in ids[rows]], probs[rows], exit_layer[rows],
                                         [f.truncated for f in job.features], speed))
        logger.debug("batch %d: %d request(s), %d text(s)%s, speed %g, waited %.1f ms, ran %.1f ms, mean exit layer "
                     "%.2f, %d queued", self._batches, len(jobs), len(features),
                     " (pairs)" if jobs[0].request.text_b is not None else "", speed,
                     1000 * (started - jobs[0].arrived), 1000 * (time.perf_counter() - started),
                     float(exit_layer.mean()), self.queued)

    def _predict(self, features: Sequence[Features], speed: float):
        """``(probs [n, labels], exit_layer [n])`` in input order, in runtime calls of texts grouped by length
        (:func:`length_groups`), each padded to its longest text."""
        n = len(features)
        lengths = np.fromiter((len(f.input_ids) for f in features), dtype=np.int64, count=n)
        probs = np.zeros((n, len(self.predictor.labels)), dtype="float32")
        exit_layer = np.zeros(n, dtype="int64")
        for rows in length_groups(lengths, self.config.max_batch_size):
            width = int(lengths[rows[0]])
            input_ids = np.full((len(rows), width), self._pad, dtype="int64")  # [batch, seq]
            token_type_ids = np.zeros((len(rows), width), dtype="int64")  # [batch, seq]
            for row, i in enumerate(rows):
                f = features[i]
                input_ids[row, :len(f.input_ids)] = f.input_ids
                token_type_ids[row, :len(f.token_type_ids)] = f.token_type_ids
            probs[rows], exit_layer[rows] = self.predictor.run_batch(input_ids, token_type_ids, speed)
        return probs, exit_layer


MAX_PADDING = 1.25
"""A runtime call pads its texts to the longest: at most this many tokens run per token of text (else the call is
cut). Eight SST-2 test sentences drawn at random pad to 1.64x their tokens in one call; cut this way, 2.5 calls per
8 ran 1.2x the texts/s of one call on a MiniLM-L6 export on ONNX Runtime, 1 and 2 threads
(benchmarks/batch_padding.py)."""


def length_groups(lengths: np.ndarray, max_batch_size: int, max_padding: float = MAX_PADDING) -> List[np.ndarray]:
    """The rows of each runtime call, longest texts first: at most ``max_batch_size`` rows, and padded to its longest
    text a call runs at most ``max_padding`` times the tokens its texts hold (a text alone always forms a call)."""
    order = np.argsort(-lengths, kind="stable")
    groups, start, tokens = [], 0, 0
    for end, i in enumerate(order):
        count = end - start + 1
        if count > 1 and (count > max_batch_size
                          or lengths[order[start]] * count > max_padding * (tokens + lengths[i])):
            groups.append(order[start:end])
            start, tokens = end, 0
        tokens += int(lengths[i])
    if len(order):
        groups.append(order[start:])
    return groups
