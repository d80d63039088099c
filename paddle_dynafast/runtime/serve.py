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

Requests that arrive together run as one batch (:mod:`.batcher`); the event loop only checks requests and queues
them.

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
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..config import ServeConfig
from ..errors import ConfigError
from .auto import AUTO
from .base import Runtime
from .batcher import Batcher, BatcherClosed, PredictRequest
from .predictor import Predictor
from .serve_metrics import Metrics

logger = logging.getLogger(__name__)

FIELDS = ("texts", "text_b", "speed")
"""The fields of a ``POST /predict`` body."""


# ----------------------------------------------------------------------------- requests


class RequestError(Exception):
    """A request the server refuses: its HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


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


# ----------------------------------------------------------------------------- the batching worker


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
        except BatcherClosed as error:
            metrics.answered(503)
            return JSONResponse({"detail": str(error)}, status_code=503)
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
