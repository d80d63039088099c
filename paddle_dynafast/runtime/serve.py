"""Serve an exported model over HTTP: FastAPI + uvicorn, dynamic batching, a speed per request.

    paddle-dynafast serve --model runs/sst2/export --port 8189
    curl -s localhost:8189/predict -d '{"texts": ["a gorgeous , witty movie ."], "speed": 0.3}'

Endpoints:

* ``POST /predict``, a JSON object ``{"texts": [...], "text_b": [...], "speed": 0.3}``: ``text_b`` (optional) is one
  second text per text, for a model trained on sentence pairs; ``speed`` (optional, default
  :attr:`ServeConfig.speed`) is the exit threshold in [0, 1]. The answer is ``{"predictions": [{"label", "probs",
  "exit_layer", "truncated"}, ...], "speed"}`` in input order. A bad request gets a 4xx whose ``detail`` names the
  problem (400 malformed JSON, or JSON nested deeper than :data:`MAX_JSON_DEPTH` levels; 408 a body that did not
  arrive within ``body_seconds``; 413 too many texts or too large a body; 422 anything else: a missing, empty or
  mistyped field, a speed outside [0, 1]); an internal failure gets a 500, and the server goes on serving.
* ``GET /health``: the model served (503 once the batching worker has died); ``GET /metrics``: Prometheus' text
  format (requests by status, batch sizes, latency and exit-layer histograms, connections); ``GET /metrics.json``:
  the same counts with latency percentiles, as JSON (:mod:`.serve_metrics`).

The hot path is short: ``POST /predict`` is a plain ASGI handler in front of FastAPI (which serves the rest), the
body is parsed with orjson, checked, tokenised on the event loop while the worker runs the previous batch
(:mod:`.batcher`), and the answer is encoded with orjson. uvicorn runs on uvloop with the httptools parser.

Connections are bounded: at most ``max_connections`` are open (past it the longest-idle one is closed for the new
one, and the new one is refused with 503 when none is idle), and one that has not sent a whole request head within
``idle_seconds`` of opening or of its last answer is closed; a body has ``body_seconds`` to arrive. A client that
goes away before its answer is counted as such (status 499 in the metrics), not as a server error.

On Ctrl-C or SIGTERM the server stops listening first and then drains: it stops accepting, stops the kernel from
completing new handshakes (:func:`refuse_new_connections`), accepts every connection already waiting in the kernel's
queue (so none that a client has opened is reset), closes the listening socket (new
connections are refused from then on), waits for each open connection that has not sent its request head yet to
send it (up to ``idle_seconds``), answers the requests in flight and those the waiting connections send (for
up to ``drain_seconds``), then the worker runs whatever is still queued and stops. If the batching worker dies, every
waiting request is answered 503 and the server stops with an error.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import logging
import resource
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from ..config import MEASURE, RuntimeConfig, ServeConfig
from ..errors import ConfigError
from .auto import AUTO
from .base import Runtime
from .batcher import Batcher, BatcherClosed, NotFinite, PredictRequest
from .predictor import Predictor
from .serve_metrics import CLIENT_GONE, Metrics

logger = logging.getLogger(__name__)

FIELDS = ("texts", "text_b", "speed")
"""The fields of a ``POST /predict`` body."""

MAX_JSON_DEPTH = 1024
"""The deepest nesting of a request body (orjson's own limit; a valid request is 2 deep): deeper is a 400."""

FILES_RESERVED = 64
"""Open files kept free beside ``max_connections`` (the model, logs, the runtime's own)."""

JSON = [(b"content-type", b"application/json")]
CLOSE = JSON + [(b"connection", b"close")]


# ----------------------------------------------------------------------------- requests


class RequestError(Exception):
    """A request the server refuses: its HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client closed its connection before its request was read whole."""


def parse_request(body: bytes, config: ServeConfig) -> PredictRequest:
    """Check a ``POST /predict`` body; a :class:`RequestError` names the first problem found."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:  # not JSON, not UTF-8, NaN, or nested too deep
        message = str(error)
        if message.startswith("depth limit exceeded"):
            message = f"nested deeper than {MAX_JSON_DEPTH} levels"
        raise RequestError(400, f"malformed JSON: {message}") from None
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
    if not 0 <= speed <= 1:
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


async def _read_body(scope: dict, receive, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit`` bytes; :class:`ClientGone` if the
    client closes first."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise RequestError(413, f"a body of {value.decode()} bytes is over the limit of {limit} "
                                        "(max_request_bytes)")
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over the limit of {limit} bytes (max_request_bytes)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send, status: int, body: bytes, headers=JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------- the application


class _Predict:
    """``POST /predict`` as a plain ASGI handler in front of ``app`` (FastAPI serves every other path)."""

    def __init__(self, app: FastAPI, batcher: Batcher, metrics: Metrics, config: ServeConfig):
        self.app, self.batcher, self.metrics, self.config = app, batcher, metrics, config

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            return await self.app(scope, receive, send)
        if scope["method"] != "POST":
            return await _send(send, 405, b'{"detail":"Method Not Allowed"}', JSON + [(b"allow", b"POST")])
        started = time.perf_counter()
        config, metrics = self.config, self.metrics
        try:
            try:
                async with asyncio.timeout(config.body_seconds):
                    body = await _read_body(scope, receive, config.max_request_bytes)
            except TimeoutError:
                raise RequestError(408, f"the body did not arrive whole within {config.body_seconds:g} s "
                                        "(body_seconds)") from None
            future = self.batcher.submit(parse_request(body, config))
            try:
                answer = await asyncio.wrap_future(future)
            except BatcherClosed:
                raise
            except NotFinite as error:  # never a NaN in an answer
                metrics.answered(500)
                return await _send(send, 500, orjson.dumps({"detail": f"internal error: {error}"}))
            except Exception as error:  # the batch failed; the worker logged its traceback
                metrics.answered(500)
                return await _send(send, 500, orjson.dumps({"detail": f"internal error ({type(error).__name__}); "
                                                                      "the server log has its traceback"}))
        except RequestError as error:
            metrics.answered(error.status)
            unread = error.status in (408, 413)  # the rest of the body is not read: the connection goes
            return await _send(send, error.status, orjson.dumps({"detail": str(error)}), CLOSE if unread else JSON)
        except ClientGone:
            metrics.answered(CLIENT_GONE)
            return None
        except BatcherClosed as error:
            metrics.answered(503)
            return await _send(send, 503, orjson.dumps({"detail": str(error)}))
        except Exception as error:  # a bug on this side of the batch
            logger.error("a request failed", exc_info=True)
            metrics.answered(500)
            return await _send(send, 500, orjson.dumps({"detail": f"internal error ({type(error).__name__}); the "
                                                                  "server log has its traceback"}))
        await _send(send, 200, orjson.dumps(answer.to_dict()))
        metrics.answered(200, time.perf_counter() - started)


def create_app(predictor: Predictor, config: Optional[ServeConfig] = None, on_death=None):
    """The ASGI application serving ``predictor``: ``POST /predict`` (:class:`_Predict`) in front of a FastAPI
    application of the rest (its worker starts and stops with the application's lifespan). ``on_death(error)`` is
    called if the batching worker dies. ``app.state`` holds the batcher and the metrics."""
    info = predictor.info
    config = config if config is not None else ServeConfig()
    if config.speed is None:  # the export's promised speed, or no early exit
        config = dataclasses.replace(config, speed=info.default_speed)
    metrics = Metrics()
    batcher = Batcher(predictor, config, metrics, on_death=on_death)

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

    @app.get("/health")
    async def health():
        alive = batcher.alive
        return JSONResponse(
            {"status": "ok" if alive else "the batching worker died", "model": str(info.directory),
             "runtime": predictor.runtime.kind, "width": info.width, "exit_loop": info.exit_loop,
             "num_layers": info.num_layers, "labels": list(info.labels), "max_seq_len": info.max_seq_len,
             "default_speed": config.speed, "batching": config.batching, "batch_window_ms": config.batch_window_ms,
             "max_batch_size": config.max_batch_size, "max_texts": config.max_texts,
             "promise": None if info.promise is None else info.promise.to_json()},
            status_code=200 if alive else 503)

    @app.get("/metrics")
    async def get_metrics():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.prometheus(batcher.queued), media_type=CONTENT_TYPE_LATEST)

    @app.get("/metrics.json")
    async def get_metrics_json():
        return metrics.snapshot(batcher.queued)

    front = _Predict(app, batcher, metrics, config)
    front.state = app.state
    return front


# ----------------------------------------------------------------------------- connections


def _guarded_protocol(config: ServeConfig, metrics: Metrics):
    """uvicorn's httptools protocol with the connection bounds of the module docstring."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    refused = orjson.dumps({"detail": f"{config.max_connections} connections are open and busy (max_connections)"})
    refusal = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
               b"content-length: " + str(len(refused)).encode() + b"\r\n\r\n" + refused)

    class GuardedProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._head_timer = None
            self._idle_since = time.monotonic()
            metrics.connection(opened=1)
            if len(self.connections) > config.max_connections:
                idle = [c for c in self.connections if c is not self and c._idle()]
                if not idle:
                    transport.write(refusal)
                    transport.close()
                    metrics.connection(closed="refused")
                    return
                oldest = min(idle, key=lambda c: c._idle_since)
                oldest.transport.close()
                metrics.connection(closed="evicted")
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            metrics.connection(opened=-1)
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._idle_since = time.monotonic()
            if not self.transport.is_closing():
                self._arm()

        def _idle(self) -> bool:
            return (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing()

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(config.idle_seconds, self._head_timeout)

        def _disarm(self) -> None:
            if getattr(self, "_head_timer", None) is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self._idle():
                self.transport.close()
                metrics.connection(closed="idle")

    return GuardedProtocol


class _Server(uvicorn.Server):
    """uvicorn's server that stops listening before it drains (the module docstring)."""

    def __init__(self, config: uvicorn.Config, listener: socket.socket):
        super().__init__(config)
        self.listener = listener
        """A duplicate of the listening socket: the kernel keeps the socket, and its queue, until it is closed."""
        self.drained = 0

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:
            server.close()  # uvicorn stops accepting; the queue stays, held by self.listener
        loop = asyncio.get_running_loop()
        refuse_new_connections(self.listener)  # the queue cannot grow while it is emptied and closed
        self.listener.setblocking(False)
        accepted = []
        while True:
            try:
                accepted.append(self.listener.accept()[0])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:  # out of files, say: what is left in the queue is reset
                logger.error("accepting the waiting connections stopped: %s", error)
                break
        for sock in sockets or []:
            sock.close()
        self.listener.close()  # from here on a new connection is refused, never reset after it was accepted
        self.drained = len(accepted)
        protocol = self.config.http_protocol_class
        for sock in accepted:
            await loop.connect_accepted_socket(
                lambda: protocol(config=self.config, server_state=self.server_state, app_state=self.lifespan.state,
                                 _loop=loop), sock)
        if accepted:
            logger.info("stopping: accepted %d waiting connection(s)", len(accepted))
        await self._await_first_heads()
        await super().shutdown(sockets=None)

    async def _await_first_heads(self) -> None:
        """Wait until every open connection that has not yet sent a whole request head sends it (uvicorn's shutdown
        would close such a connection unanswered) or is closed, for at most ``idle_seconds``, the bound after which
        such a connection is closed anyway."""
        deadline = time.monotonic() + self.config.timeout_keep_alive
        while time.monotonic() < deadline and any(
                c.cycle is None and not c.transport.is_closing() for c in self.server_state.connections):
            await asyncio.sleep(0.01)


DROP_EVERY_PACKET = struct.pack("HBBI", 0x06, 0, 0, 0)
"""A classic BPF program of one instruction, ``ret #0``: a socket filter that lets no packet through."""


def refuse_new_connections(listener: socket.socket) -> bool:
    """Make the kernel stop completing handshakes on ``listener`` (Linux: a socket filter that drops every packet,
    new SYNs and the last ACK of a handshake alike), so that its accept queue stays as it is: a connection that
    comes now is retried by its client and refused once the socket is closed, instead of being queued and then
    reset by the close. Only a handshake whose last ACK was already in flight (a round trip, microseconds on one
    host) can still be cut. Returns False where socket filters do not exist (nothing changed)."""
    program = ctypes.create_string_buffer(DROP_EVERY_PACKET)
    fprog = struct.pack("HP", 1, ctypes.addressof(program))  # struct sock_fprog {len; filter*}, native padding
    try:
        listener.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_ATTACH_FILTER", 26), fprog)
    except OSError:
        return False
    return True


class ModelServer:
    """An HTTP server of an exported model; its socket is bound when it is made (``port`` 0: a free port), or
    ``listener`` is given (a bound socket shared by several processes, ``serve --workers``).

    :meth:`run` serves in the calling thread until Ctrl-C or SIGTERM (the command line); :meth:`start` serves on a
    background thread until :meth:`stop` (notebooks, tests, benchmarks; also a context manager)::

        with ModelServer(Predictor("runs/sst2/export"), ServeConfig(port=0)) as server:
            httpx.post(server.url + "/predict", json={"texts": ["a gorgeous , witty movie ."], "speed": 0.3})

    If the batching worker dies the server stops, and :meth:`run` (or :meth:`stop`) raises :class:`ServerError`.
    """

    def __init__(self, predictor: Predictor, config: Optional[ServeConfig] = None,
                 listener: Optional[socket.socket] = None):
        self.config = config if config is not None else ServeConfig()
        self.predictor = predictor
        open_files(self.config.max_connections + FILES_RESERVED)
        self.app = create_app(predictor, self.config, on_death=self._worker_died)
        self.socket = listener if listener is not None else _bind(self.config.host, self.config.port)
        host, self.port = self.socket.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        self._server = _Server(uvicorn.Config(
            self.app, log_config=None, access_log=False, ws="none", lifespan="on", loop="auto",
            http=_guarded_protocol(self.config, self.app.state.metrics), timeout_keep_alive=self.config.idle_seconds,
            timeout_graceful_shutdown=self.config.drain_seconds), self.socket.dup())
        self._thread: Optional[threading.Thread] = None

    def _worker_died(self, error: BaseException) -> None:
        self._server.should_exit = True

    def _check(self) -> None:
        failure = self.app.state.batcher.failure
        if failure is not None:
            raise ServerError(f"the batching worker died ({type(failure).__name__}: {failure}); the server stopped "
                              "(the log has its traceback)") from failure

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM, then answer the requests in flight and return (uvicorn then raises the
        signal again: ``KeyboardInterrupt`` for Ctrl-C, the default action of SIGTERM)."""
        self._server.run(sockets=[self.socket])
        self._check()

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
        self._check()

    @property
    def metrics(self) -> Dict[str, Any]:
        return self.app.state.metrics.snapshot(self.app.state.batcher.queued)

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ServerError(RuntimeError):
    """The server stopped because its batching worker died (a bug: the log has its traceback)."""


def open_files(needed: int) -> None:
    """Raise this process's soft limit of open files to ``needed`` if it is lower (up to the hard limit); a hard
    limit below it is a ConfigError naming both."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ConfigError(f"max_connections needs {needed} open files with the {FILES_RESERVED} the server keeps; "
                          f"the limit is {hard} (ulimit -n): lower --max-connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


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


# ----------------------------------------------------------------------------- several processes


def serve_processes(directory: Union[str, Path], runtime: RuntimeConfig, config: ServeConfig,
                    log_level: int = logging.INFO) -> None:
    """Serve ``directory`` with ``config.workers`` processes until Ctrl-C or SIGTERM (``serve --workers N``).

    The port is bound here once and every process accepts on that socket, each with its own runtime on
    ``runtime.threads // workers`` threads (``auto`` is chosen here, once, for that thread count). SIGTERM or Ctrl-C
    is passed on to every process, and each stops as :class:`ModelServer` does. ``GET /metrics`` adds up the counts
    of every process (a ``PROMETHEUS_MULTIPROC_DIR`` made here); ``/metrics.json`` and ``/health`` answer for the
    process that took the connection. If a process dies, the others are stopped and :class:`ServerError` names it.
    """
    import multiprocessing
    import shutil
    import signal
    import tempfile
    from multiprocessing.connection import wait

    from .choose import choose, remembered_crossover
    from .serve_metrics import MULTIPROCESS_ENV

    threads = max(1, runtime.threads // config.workers)
    if runtime.name == AUTO:
        candidate, _ = choose(directory, runtime.precision, threads)
        options = dict(candidate.options)
        runtime = dataclasses.replace(runtime, name=candidate.runtime, precision=candidate.precision,
                                      onednn=bool(options.get("onednn", runtime.onednn)),
                                      native_below=int(options.get("native_below", runtime.native_below)))
    if runtime.native_below == MEASURE:  # measured here, once, not by every process at the same time
        runtime = dataclasses.replace(runtime, native_below=remembered_crossover(directory, threads))
    runtime = dataclasses.replace(runtime, threads=threads)
    listener = _bind(config.host, config.port)
    listener.listen(2048)  # connections queue from now on, before any process accepts
    host, port = listener.getsockname()[:2]
    metrics_dir = tempfile.mkdtemp(prefix="paddle_dynafast_metrics_")
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = metrics_dir  # the children inherit it
    processes = []
    stopping = []
    handlers = {}
    try:
        for i in range(config.workers):
            process = context.Process(target=_serve_one, name=f"paddle-dynafast-serve-{i}",
                                      args=(str(directory), runtime, config, listener, ready, log_level))
            process.start()
            processes.append(process)

        def forward(sig, frame):
            stopping.append(sig)
            for p in processes:
                if p.is_alive():
                    os.kill(p.pid, sig)

        handlers = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        started = 0
        while started < len(processes) and not stopping:
            if any(not p.is_alive() for p in processes):
                break
            try:
                ready.get(timeout=0.5)
                started += 1
            except Exception:  # queue.Empty
                pass
        listener.close()  # the processes hold the socket: when the last one closes it, it stops listening
        if started == len(processes):
            logger.info("serving %s with %d processes of %d thread(s) (%s %s) on http://%s:%d; Ctrl-C stops",
                        directory, len(processes), threads, runtime.name, runtime.precision, host, port)
        left = list(processes)
        while left:
            for sentinel in wait([p.sentinel for p in left]):
                gone = next(p for p in left if p.sentinel == sentinel)
                left.remove(gone)
                gone.join()
                if not stopping:
                    stopping.append(None)
                    for p in left:
                        os.kill(p.pid, signal.SIGTERM)
                    raise_after = ServerError(f"server process {gone.pid} exited with code {gone.exitcode}; the "
                                              "others were stopped")
                    for p in left:
                        p.join()
                    raise raise_after
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
                p.join()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous


def _serve_one(directory: str, runtime: RuntimeConfig, config: ServeConfig, listener: socket.socket, ready, log_level: int) -> None:
    """One process of :func:`serve_processes`."""
    import signal
    import sys

    from .auto import open_configured

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("paddle_dynafast").setLevel(log_level)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    server = ModelServer(Predictor(open_configured(directory, runtime)), config, listener=listener)
    ready.put(os.getpid())
    try:
        server.run()
    except KeyboardInterrupt:
        pass
