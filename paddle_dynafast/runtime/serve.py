"""Serve an exported model over HTTP: FastAPI + uvicorn, dynamic batching, a speed per request.

    paddle-dynafast serve --model runs/sst2/export --port 8189
    curl -s localhost:8189/predict -d '{"texts": ["a gorgeous , witty movie ."], "speed": 0.3}'

Endpoints:

* ``POST /predict``, a JSON object ``{"texts": [...], "text_b": [...], "speed": 0.3}``: ``text_b`` (optional) is one
  second text per text, for a model trained on sentence pairs; ``speed`` (optional, default
  :attr:`ServeConfig.speed`) is the exit threshold in [0, 1]. The answer is ``{"predictions": [{"label", "probs",
  "exit_layer", "truncated"}, ...], "speed"}`` in input order. A bad request gets a 4xx whose ``detail`` names the
  problem (400 malformed JSON, 413 too many texts or too large a body, 422 anything else: a missing, empty or
  mistyped field, a speed outside [0, 1]); an internal failure gets a 500, and the server goes on serving.
* ``GET /health``: the model served; ``GET /metrics``: requests by status, batch sizes, latency percentiles and the
  exit-layer histogram.

Dynamic batching. Paddle Inference predictors are not thread-safe, so one worker thread owns the runtime and the
event loop only checks requests and queues them (:class:`Batcher`). The worker takes the oldest waiting request and
lets others arrive until ``batch_window_ms`` after it came (or until ``max_batch_size`` texts of its kind wait), then
runs every waiting request of the same speed (and the same kind, pairs or single texts), oldest first, as one call:
tokenised together, grouped by length, each caller handed its own rows. A speed is an input of the exported
program, one per call, so requests with another speed wait for the next batch. Under load the worker is busy while
the queue fills, and batches grow without any waiting. ``batching=False`` runs every request alone.

On Ctrl-C or SIGTERM uvicorn stops accepting connections and answers the requests in flight (for up to
``drain_seconds``); then the worker runs whatever is still queued and stops.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Union

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..config import ServeConfig
from ..errors import ConfigError
from .auto import AUTO
from .base import Runtime
from .predictor import Predictor

logger = logging.getLogger(__name__)

FIELDS = ("texts", "text_b", "speed")
"""The fields of a ``POST /predict`` body."""
LATENCY_WINDOW = 10_000
"""Latency percentiles are over this many most recent answered requests."""


# ----------------------------------------------------------------------------- requests


class RequestError(Exception):
    """A request the server refuses: its HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


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


def parse_request(body: bytes, config: ServeConfig) -> PredictRequest:
    """Check a ``POST /predict`` body; a :class:`RequestError` names the first problem found."""
    try:
        payload = json.loads(body)
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
        raise RequestError(400, f"malformed JSON: {error}") from None
    if not isinstance(payload, dict):
        raise RequestError(422, f'the body must be a JSON object like {{"texts": ["..."]}}, got {_kind(payload)}')
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise RequestError(422, f"unknown field(s) {unknown}; a request has {list(FIELDS)}")
    if "texts" not in payload:
        raise RequestError(422, '"texts" is missing: give a list of strings')
    texts = _texts(payload["texts"], "texts", config)
    text_b = None
    if payload.get("text_b") is not None:
        text_b = _texts(payload["text_b"], "text_b", config)
        if len(text_b) != len(texts):
            raise RequestError(422, f"{len(text_b)} text_b for {len(texts)} texts: give one second text per text")
    speed = payload.get("speed")
    if speed is None:
        speed = config.speed
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise RequestError(422, f'"speed" must be a number in [0, 1], got {_kind(speed)}')
    if not 0 <= speed <= 1:  # NaN too
        raise RequestError(422, f"speed {speed} is not in [0, 1]")
    return PredictRequest(texts, text_b, float(speed))


def _texts(value: Any, name: str, config: ServeConfig) -> List[str]:
    if not isinstance(value, list):
        raise RequestError(422, f'"{name}" must be a list of strings, got {_kind(value)}')
    if not value:
        raise RequestError(422, f'"{name}" is empty: give at least one text')
    if len(value) > config.max_texts:
        raise RequestError(413, f'{len(value)} {name} in one request; the limit is {config.max_texts} (max_texts)')
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise RequestError(422, f"{name}[{i}] must be a string, got {_kind(text)}")
        if not text.strip():
            raise RequestError(422, f"{name}[{i}] is empty")
    return value


def _kind(value: Any) -> str:
    """The JSON type of ``value``, for messages."""
    if value is None:
        return "null"
    for types, name in ((bool, "a boolean"), (str, "a string"), ((int, float), "a number"), (list, "an array"),
                        (dict, "an object")):
        if isinstance(value, types):
            return name
    return type(value).__name__


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"a body of {declared} bytes is over the limit of {limit} (max_request_bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the body is over the limit of {limit} bytes (max_request_bytes)")
    return bytes(body)


# ----------------------------------------------------------------------------- metrics


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


# ----------------------------------------------------------------------------- the batching worker


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
                raise RequestError(503, "the server is shutting down")
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
            features, _ = self.predictor.encode(texts, text_b, quiet=True)
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


# ----------------------------------------------------------------------------- the application


def create_app(predictor: Predictor, config: Optional[ServeConfig] = None) -> FastAPI:
    """The FastAPI application serving ``predictor`` (its worker starts and stops with the application's lifespan)."""
    config = config if config is not None else ServeConfig()
    metrics = Metrics()
    batcher = Batcher(predictor, config, metrics)
    info = predictor.info

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.to_thread(batcher.close)
            done = metrics.snapshot()
            logger.info("stopped after %d request(s) (%d ok) in %d batch(es)", done["requests"]["total"],
                        done["requests"]["ok"], done["batches"])

    app = FastAPI(title="paddle-dynafast", description=__doc__.split("\n")[0], lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics

    @app.post("/predict")
    async def predict(request: Request):
        started = time.perf_counter()
        try:
            parsed = parse_request(await _read_body(request, config.max_request_bytes), config)
            answer = await asyncio.wrap_future(batcher.submit(parsed))
        except RequestError as error:
            metrics.answered(error.status)
            return JSONResponse({"detail": str(error)}, status_code=error.status)
        except Exception as error:  # the batch failed; its traceback is in the log
            metrics.answered(500)
            return JSONResponse({"detail": f"internal error ({type(error).__name__}); the server log has its "
                                           "traceback"}, status_code=500)
        metrics.answered(200, time.perf_counter() - started)
        return JSONResponse(answer)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": str(info.directory), "runtime": predictor.runtime.kind,
                "width": info.width, "exit_loop": info.exit_loop, "num_layers": info.num_layers,
                "labels": list(info.labels), "max_seq_len": info.max_seq_len, "default_speed": config.speed,
                "batching": config.batching, "batch_window_ms": config.batch_window_ms,
                "max_batch_size": config.max_batch_size, "max_texts": config.max_texts}

    @app.get("/metrics")
    async def get_metrics():
        return metrics.snapshot(batcher.queued)

    return app


class ModelServer:
    """An HTTP server of an exported model; its socket is bound when it is made (``port`` 0: a free port).

    :meth:`run` serves in the calling thread until Ctrl-C or SIGTERM (the command line); :meth:`start` serves on a
    background thread until :meth:`stop` (notebooks, tests, benchmarks; also a context manager)::

        with ModelServer(Predictor("runs/sst2/export"), ServeConfig(port=0)) as server:
            httpx.post(server.url + "/predict", json={"texts": ["a gorgeous , witty movie ."], "speed": 0.3})
    """

    def __init__(self, predictor: Predictor, config: Optional[ServeConfig] = None):
        self.config = config if config is not None else ServeConfig()
        self.predictor = predictor
        self.app = create_app(predictor, self.config)
        self.socket = _bind(self.config.host, self.config.port)
        host, self.port = self.socket.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, log_config=None, access_log=False, ws="none", lifespan="on",
            timeout_graceful_shutdown=self.config.drain_seconds))
        self._thread: Optional[threading.Thread] = None

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM, then answer the requests in flight and return (uvicorn then raises the
        signal again: ``KeyboardInterrupt`` for Ctrl-C, the default action of SIGTERM)."""
        self._server.run(sockets=[self.socket])

    def start(self, timeout: float = 60.0) -> "ModelServer":
        """Serve on a background thread; returns once the server answers."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.socket]},
                                        name="paddle-dynafast-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start`, after answering the requests in flight."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self.socket.close()

    @property
    def metrics(self) -> Dict[str, Any]:
        return self.app.state.metrics.snapshot(self.app.state.batcher.queued)

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host``:``port``; an address that cannot be bound is a ConfigError naming it."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        if sock is not None:
            sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def serve(source: Union[str, Path, Runtime, Predictor], config: Optional[ServeConfig] = None,
          runtime: str = AUTO, threads: int = 2, **options) -> None:
    """Serve ``source`` (an export directory, a runtime or a :class:`Predictor`) until Ctrl-C or SIGTERM.

    ``runtime``, ``threads`` and ``options`` open an export directory as :class:`Predictor` does."""
    predictor = source if isinstance(source, Predictor) else Predictor(source, runtime=runtime, threads=threads,
                                                                       **options)
    server = ModelServer(predictor, config)
    logger.info("serving %s (%s, width %g, %s) on %s; Ctrl-C stops", predictor.info.directory,
                predictor.runtime.kind, predictor.info.width,
                "exit loop" if predictor.info.exit_loop else "no exit loop", server.url)
    server.run()
