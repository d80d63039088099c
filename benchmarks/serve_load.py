"""Load test of ``paddle-dynafast serve``: throughput and p50/p99 latency with and without dynamic batching.

Starts two servers of the same export on free loopback ports, one batching (``--batch-window-ms``) and one running
every request alone (``--no-batching``), each in its own process with ``--threads`` threads; then, for every speed,
``--clients`` concurrent clients each send ``--requests`` requests of ``--texts-per-request`` texts one after
another, to one server and then the other, for ``--rounds`` interleaved rounds (A, B, A, B, ...: the noise of a
shared machine falls on both alike). Reported per (speed, server): medians over the rounds of requests per second,
texts per second, p50 and p99 latency, and from the server's /metrics.json the mean requests per batch and exit layer.
Every request must get exactly one answer, 200, one prediction per text; anything else stops the run.

Run (a real export, texts from the SST-2 test split):

    .venv/bin/python benchmarks/serve_load.py --model runs/sst2/export --data-dir ../shared/data/sst2 \\
        --speeds 0 0.3 --clients 16 --requests 50 --output runs/serve-load

tests/test_serve_load.py runs it at a tiny scale (4 clients x 3 requests, one round).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

import httpx
import numpy as np

from paddle_dynafast import data


@dataclass
class LoadResult:
    """One load run: ``clients`` x ``requests`` requests."""

    clients: int
    requests: int
    seconds: float
    latency_ms: List[float]
    """Per request, in the order they finished."""
    answers: List[Any] = field(repr=False, default_factory=list)
    """``(payload index, status, JSON body)`` of every request."""

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return len(self.answers) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q))

    def summary(self, texts_per_request: int = 1) -> Dict[str, float]:
        return {"requests": len(self.answers), "requests_per_second": round(self.throughput, 1),
                "texts_per_second": round(self.throughput * texts_per_request, 1),
                "p50_ms": round(self.percentile(50), 2), "p99_ms": round(self.percentile(99), 2)}


def run_load(url: str, payloads: Sequence[Dict[str, Any]], clients: int, requests: int,
             timeout: float = 120.0) -> LoadResult:
    """``clients`` concurrent clients, each sending ``requests`` ``POST /predict`` one after another (client ``c``'s
    ``r``-th request is ``payloads[(c * requests + r) % len(payloads)]``); every answer is kept."""

    async def main() -> LoadResult:
        answers, latency = [], []
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

            async def one_client(c: int) -> None:
                for r in range(requests):
                    index = (c * requests + r) % len(payloads)
                    started = time.perf_counter()
                    response = await client.post("/predict", json=payloads[index])
                    latency.append(1000 * (time.perf_counter() - started))
                    answers.append((index, response.status_code, response.json()))

            started = time.perf_counter()
            await asyncio.gather(*(one_client(c) for c in range(clients)))
            seconds = time.perf_counter() - started
        return LoadResult(clients, requests, seconds, latency, answers)

    return asyncio.run(main())


def check_answers(result: LoadResult, payloads: Sequence[Dict[str, Any]]) -> None:
    """Every request answered once, 200, one prediction per text; raises naming the first that was not."""
    expected = result.clients * result.requests
    if len(result.answers) != expected:
        raise RuntimeError(f"{len(result.answers)} answers to {expected} requests")
    for index, status, body in result.answers:
        if status != 200 or len(body["predictions"]) != len(payloads[index]["texts"]):
            raise RuntimeError(f"request {payloads[index]} got {status}: {body}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, extra: Sequence[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "paddle_dynafast", "serve", "--model", model, "--port", str(port), *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{' '.join(command)} did not answer in 180 s; see {log}")


def load_texts(data_dir: str, split: str, count: int) -> List[Dict[str, str]]:
    path = data.find_split(data_dir, split)
    if path is None:
        raise SystemExit(f"{data_dir} has no {split} split")
    return [{"text": e.text_a, **({"text_b": e.text_b} if e.text_b else {})} for e in data.read_examples(path)[:count]]


def payloads_of(texts: Sequence[Dict[str, str]], per_request: int, speed: float) -> List[Dict[str, Any]]:
    out = []
    for start in range(0, len(texts) - per_request + 1, per_request):
        chunk = texts[start:start + per_request]
        payload = {"texts": [t["text"] for t in chunk], "speed": speed}
        if "text_b" in chunk[0]:
            payload["text_b"] = [t["text_b"] for t in chunk]
        out.append(payload)
    return out


def markdown(rows: List[Dict[str, Any]]) -> str:
    lines = ["| speed | server | requests/s | texts/s | p50 latency | p99 latency | requests per batch | mean exit layer |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['speed']:g} | {r['server']} | {r['requests_per_second']:.1f} | {r['texts_per_second']:.1f} "
                     f"| {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['requests_per_batch']:.2f} "
                     f"| {r['mean_exit_layer']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an export directory")
    parser.add_argument("--data-dir", required=True, help="texts to send: a data folder (train/dev/test files)")
    parser.add_argument("--split", default="test", help="split the texts come from (default test)")
    parser.add_argument("--speeds", type=float, nargs="+", default=[0.0, 0.3], help="speeds (default 0 0.3)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--requests", type=int, default=50, help="requests per client and round (default 50)")
    parser.add_argument("--texts-per-request", type=int, default=1, help="texts per request (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per speed and server (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each server (default 2)")
    parser.add_argument("--batch-window-ms", type=float, default=None, help="the batching server's window "
                                                                              "(default: serve's)")
    parser.add_argument("--max-batch-size", type=int, default=None, help="default: serve's")
    parser.add_argument("--runtime", default="auto", help="runtime of both servers (default auto: the fastest here)")
    parser.add_argument("--precision", default="fp32", help="precision of both servers (fp32, bf16, int8)")
    parser.add_argument("--output", required=True, help="directory for serve_load.json and serve_load.md")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise (import paddle sets up root)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    texts = load_texts(args.data_dir, args.split, max(args.clients * args.requests * args.texts_per_request, 1))
    common = ["--threads", str(args.threads), "--runtime", args.runtime, "--precision", args.precision]
    batching = common + (["--batch-window-ms", str(args.batch_window_ms)] if args.batch_window_ms is not None else [])
    batching += ["--max-batch-size", str(args.max_batch_size)] if args.max_batch_size is not None else []
    servers = {}
    try:
        for name, extra in (("batching", batching), ("one by one", common + ["--no-batching"])):
            port = free_port()
            servers[name] = (f"http://127.0.0.1:{port}", start_server(args.model, port, extra,
                                                                      out / f"server-{name.replace(' ', '-')}.log"))
        runs: Dict[tuple, List[Dict[str, float]]] = {}
        for url, _ in servers.values():  # warm-up: every batch shape the runs will see, untimed
            for speed in args.speeds:
                run_load(url, payloads_of(texts, args.texts_per_request, speed), args.clients, 2)
        for round_ in range(args.rounds):
            for speed in args.speeds:
                payloads = payloads_of(texts, args.texts_per_request, speed)
                for name, (url, _) in servers.items():
                    before = httpx.get(url + "/metrics.json").json()
                    result = run_load(url, payloads, args.clients, args.requests)
                    check_answers(result, payloads)
                    after = httpx.get(url + "/metrics.json").json()
                    batches = after["batches"] - before["batches"]
                    layers = {k: after["exit_layer"]["histogram"].get(k, 0)
                              - before["exit_layer"]["histogram"].get(k, 0) for k in after["exit_layer"]["histogram"]}
                    row = {**result.summary(args.texts_per_request),
                           "requests_per_batch": len(result.answers) / batches,
                           "mean_exit_layer": sum(int(k) * n for k, n in layers.items()) / sum(layers.values())}
                    runs.setdefault((speed, name), []).append(row)
                    print(f"round {round_ + 1}, speed {speed:g}, {name}: {row}", file=sys.stderr)
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(timeout=60)
    rows = [{"speed": speed, "server": name, **{k: statistics.median(r[k] for r in values) for k in values[0]}}
            for (speed, name), values in runs.items()]
    table = markdown(rows)
    gains = []
    for speed in args.speeds:
        b, o = (next(r for r in rows if r["speed"] == speed and r["server"] == n) for n in ("batching", "one by one"))
        gains.append(f"speed {speed:g}: batching gives {b['requests_per_second'] / o['requests_per_second']:.2f}x "
                     f"the throughput, p50 {o['p50_ms'] / b['p50_ms']:.2f}x and p99 {o['p99_ms'] / b['p99_ms']:.2f}x "
                     "lower latency")
    machine = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "python": platform.python_version(), "load_average": os.getloadavg()}
    (out / "serve_load.json").write_text(json.dumps({"args": vars(args), "machine": machine, "rows": rows,
                                                     "runs": {f"{s:g} {n}": v for (s, n), v in runs.items()}},
                                                    indent=2))
    (out / "serve_load.md").write_text(table + "\n" + "\n".join(gains) + "\n")
    print(table + "\n" + "\n".join(gains))
    print(f"-> {out}/serve_load.{{json,md}}")


if __name__ == "__main__":
    main()
