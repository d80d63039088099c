"""``paddle-dynafast serve``: an exported model over HTTP, with dynamic batching and a speed per request
(:func:`paddle_dynafast.runtime.serve.serve`, configured by :class:`~paddle_dynafast.config.ServeConfig`).

Example::

    paddle-dynafast serve --model runs/sst2/export --port 8189
    curl -s localhost:8189/predict -d '{"texts": ["a gorgeous , witty movie ."], "speed": 0.3}'
"""
from __future__ import annotations

import argparse
import logging

from ..config import RuntimeConfig, ServeConfig, default
from ..runtime.auto import open_configured
from .common import add_runtime_args, runtime_config


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve an exported model over HTTP, with dynamic batching and a speed per request",
        description="POST /predict {\"texts\": [...], \"text_b\": [...], \"speed\": 0.3} answers labels, "
                    "probabilities and exit layers; GET /health, GET /metrics. Requests that arrive within "
                    "--batch-window-ms run as one batch (grouped by speed). Ctrl-C or SIGTERM answers the requests in "
                    "flight, then stops.",
        epilog="example: paddle-dynafast serve --model runs/sst2/export --port 8189; then curl -s "
               "localhost:8189/predict -d '{\"texts\": [\"a gorgeous , witty movie .\"], \"speed\": 0.3}'")
    p.add_argument("--model", required=True, help="an export directory")
    host, port, speed = (default(ServeConfig, name) for name in ("host", "port", "speed"))
    p.add_argument("--host", default=host, help=f"interface to listen on (default {host}; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=port, help=f"TCP port (default {port}; 0 for any free port)")
    p.add_argument("--speed", type=float, default=speed,
                   help="speed of a request that gives none (default: the speed the export was calibrated at, 0 "
                        "(no early exit) for an export without a promise)")
    window = default(ServeConfig, "batch_window_ms")
    p.add_argument("--batch-window-ms", type=float, default=window,
                   help=f"how long a request waits for others to batch with (default {window:g})")
    batch = default(ServeConfig, "max_batch_size")
    p.add_argument("--max-batch-size", type=int, default=batch, help=f"texts per batch (default {batch})")
    p.add_argument("--no-batching", action="store_true", help="run every request alone, as it arrives")
    texts, size = default(ServeConfig, "max_texts"), default(ServeConfig, "max_request_bytes")
    p.add_argument("--max-texts", type=int, default=texts, help=f"texts one request may carry (default {texts})")
    p.add_argument("--max-request-bytes", type=int, default=size, help=f"largest request body (default {size})")
    connections, idle, body, drain = (default(ServeConfig, name) for name in ("max_connections", "idle_seconds",
                                                                              "body_seconds", "drain_seconds"))
    p.add_argument("--max-connections", type=int, default=connections,
                   help=f"open connections at most; past it the longest-idle one is closed (default {connections})")
    p.add_argument("--idle-seconds", type=float, default=idle,
                   help=f"close a connection that sends no request this long (default {idle:g})")
    p.add_argument("--body-seconds", type=float, default=body,
                   help=f"answer 408 to a body that has not arrived this long after its head (default {body:g})")
    p.add_argument("--drain-seconds", type=float, default=drain,
                   help=f"on Ctrl-C or SIGTERM, how long the requests in flight may take (default {drain:g})")
    p.add_argument("--workers", type=int, default=default(ServeConfig, "workers"),
                   help="server processes on the port, each with its own runtime and --threads / N threads "
                        "(default 1)")
    add_runtime_args(p, RuntimeConfig())
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The server's config; what runs the model is :func:`~paddle_dynafast.cli.common.runtime_config`'s."""
    return ServeConfig(host=args.host, port=args.port, batching=not args.no_batching,
                       batch_window_ms=args.batch_window_ms, max_batch_size=args.max_batch_size,
                       max_texts=args.max_texts, max_request_bytes=args.max_request_bytes, speed=args.speed,
                       drain_seconds=args.drain_seconds, max_connections=args.max_connections,
                       idle_seconds=args.idle_seconds, body_seconds=args.body_seconds, workers=args.workers)


def run(args: argparse.Namespace) -> int:
    from ..runtime import serve  # FastAPI and uvicorn load for this command only

    config = config_from_args(args)
    runtime = runtime_config(args)
    if config.workers > 1:
        serve.serve_processes(args.model, runtime, config, logging.DEBUG if args.verbose else logging.INFO)
    else:
        serve.serve(open_configured(args.model, runtime), config)
    return 0
