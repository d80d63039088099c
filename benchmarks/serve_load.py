"""Load test of ``paddle-dynafast serve``: served texts/s against the export's offline throughput, p50/p99 latency,
and every answer checked against ``Predictor`` on the same text.

Starts the servers of one export on free loopback ports, each in its own process with ``--threads`` threads: one
batching (``--batch-window-ms``), unless ``--no-one-by-one`` one running every request alone (``--no-batching``),
and with ``--workers N`` one of N processes of ``--threads / N`` threads each. For every speed, ``--clients``
concurrent clients (a small asyncio HTTP/1.1 client with keep-alive, so that the load generator costs little of the
shared cores) each send ``--requests`` requests of ``--texts-per-request`` texts one after another, to each server in
turn, for ``--rounds`` interleaved rounds; each round also times the export offline (the same runtime, precision and
threads, in this process, on the same texts already tokenised, in batches of ``--offline-batch`` grouped by length:
what ``paddle-dynafast bench`` calls throughput). Reported per (speed, server): medians over the rounds of requests
and texts per second, served texts/s over offline texts/s, p50 and p99 latency, and from the server's
``/metrics.json`` the mean requests per batch and exit layer. Every request must get exactly one answer, 200, one
prediction per text, whose label and probabilities are ``Predictor``'s for its own text (within ``--atol``: int8
with activations quantized at run time depends a little on the batch); anything else stops the run.

Run (a real export, texts from the SST-2 test split):

    .venv/bin/python benchmarks/serve_load.py --model runs/sst2/export --data-dir ../shared/data/sst2 \\
        --runtime onnxruntime --precision int8 --speeds 0 0.3 --clients 16 --requests 100 --output runs/serve-load

tests/test_serve_load.py runs it at a tiny scale (4 clients x 3 requests, one round).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import re
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


async def _post(reader, writer, path: bytes, body: bytes):
    """One HTTP/1.1 request on a kept-alive connection: ``(status, body bytes)``."""
    writer.write(b"POST %s HTTP/1.1\r\nhost: load\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                 % (path, len(body), body))
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise RuntimeError(f"an answer with status {status} and no content-length")
    return status, await reader.readexactly(length)


def run_load(url: str, payloads: Sequence[Dict[str, Any]], clients: int, requests: int,
             timeout: float = 120.0) -> LoadResult:
    """``clients`` concurrent clients, each on its own kept-alive connection sending ``requests`` ``POST /predict``
    one after another (client ``c``'s ``r``-th request is ``payloads[(c * requests + r) % len(payloads)]``); every
    answer is kept."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    bodies = [json.dumps(p).encode() for p in payloads]

    async def main() -> LoadResult:
        answers, latency = [], []

        async def one_client(c: int) -> None:
            reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            try:
                for r in range(requests):
                    index = (c * requests + r) % len(payloads)
                    started = time.perf_counter()
                    status, body = await asyncio.wait_for(_post(reader, writer, b"/predict", bodies[index]), timeout)
                    latency.append(1000 * (time.perf_counter() - started))
                    answers.append((index, status, json.loads(body)))
            finally:
                writer.close()

        started = time.perf_counter()
        await asyncio.gather(*(one_client(c) for c in range(clients)))
        return LoadResult(clients, requests, time.perf_counter() - started, latency, answers)

    return asyncio.run(main())


def check_answers(result: LoadResult, payloads: Sequence[Dict[str, Any]], expected=None, atol: float = 1e-4) -> float:
    """Every request answered once, 200, one prediction per text, and (with ``expected``: ``{text: (label, probs)}``)
    the label and probabilities of its own text; raises naming the first that was not. Returns the largest
    difference of a probability."""
    wanted = result.clients * result.requests
    if len(result.answers) != wanted:
        raise RuntimeError(f"{len(result.answers)} answers to {wanted} requests")
    worst = 0.0
    for index, status, body in result.answers:
        texts = payloads[index]["texts"]
        if status != 200 or len(body["predictions"]) != len(texts):
            raise RuntimeError(f"request {payloads[index]} got {status}: {body}")
        if expected is None:
            continue
        for text, prediction in zip(texts, body["predictions"]):
            label, probs = expected[text]
            difference = float(np.abs(np.asarray(prediction["probs"]) - probs).max())
            worst = max(worst, difference)
            if difference > atol or (prediction["label"] != label and difference > 1e-6):
                raise RuntimeError(f"the answer to {text!r} is {prediction}, Predictor says {label} {probs.tolist()}")
    return worst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAUNCH = ("import sys; [sys.modules.__setitem__(m, None) for m in sys.argv[1].split(',') if m]; "
          "sys.argv = ['paddle-dynafast'] + sys.argv[2:]; from paddle_dynafast.console import main; sys.exit(main())")
"""``paddle-dynafast`` with some modules made unimportable (``uvloop,httptools``: uvicorn falls back to asyncio
and h11)."""


def start_server(model: str, port: int, extra: Sequence[str], log: Path, blocked: str = "",
                 pythonpath: str = "", verbose: bool = False) -> subprocess.Popen:
    """``paddle-dynafast serve`` of ``model`` on ``port``, without the ``blocked`` modules, importing paddle_dynafast
    from ``pythonpath`` if given (another checkout: the server before a change)."""
    command = [sys.executable, "-c", LAUNCH, blocked, *(["-v"] if verbose else []), "serve", "--model",
               str(Path(model).resolve()), "--port", str(port), *extra]
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    # run beside the log: ``python -c`` imports from its working directory first, which would shadow PYTHONPATH
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env,
                               cwd=Path(log).resolve().parent)
    deadline = time.monotonic() + 300
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
    raise RuntimeError(f"{' '.join(command)} did not answer in 300 s; see {log}")


def load_texts(data_dir: str, split: str, count: int) -> List[Dict[str, str]]:
    path = data.find_split(data_dir, split)
    if path is None:
        raise SystemExit(f"{data_dir} has no {split} split")
    examples = data.read_examples(path)
    examples = (examples * (count // max(len(examples), 1) + 1))[:count]  # repeated when the split is short
    return [{"text": e.text_a, **({"text_b": e.text_b} if e.text_b else {})} for e in examples]


def payloads_of(texts: Sequence[Dict[str, str]], per_request: int, speed: float) -> List[Dict[str, Any]]:
    out = []
    for start in range(0, len(texts) - per_request + 1, per_request):
        chunk = texts[start:start + per_request]
        payload = {"texts": [t["text"] for t in chunk], "speed": speed}
        if "text_b" in chunk[0]:
            payload["text_b"] = [t["text_b"] for t in chunk]
        out.append(payload)
    return out


def metrics_of(url: str) -> Dict[str, Any]:
    """The server's batches and exit-layer counts, ``{"batches": n, "exit_layer": {"histogram": {layer: texts}}}``:
    from Prometheus' ``/metrics``, which adds up every process of a ``--workers N`` server (``/metrics.json``
    answers for the one process that took the connection); ``/metrics.json`` (or ``/metrics``) of a server from
    before Prometheus."""
    from prometheus_client.parser import text_string_to_metric_families

    from paddle_dynafast.runtime.serve_metrics import PREFIX

    response = httpx.get(url + "/metrics")
    if response.status_code == 200 and not response.text.lstrip().startswith("{"):
        batches, layers = 0, {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == f"{PREFIX}_batch_requests_count":
                    batches += int(sample.value)
                elif sample.name == f"{PREFIX}_exit_layer_texts_total":
                    layers[sample.labels["layer"]] = layers.get(sample.labels["layer"], 0) + int(sample.value)
        return {"batches": batches, "exit_layer": {"histogram": layers}}
    response = httpx.get(url + "/metrics.json")
    return response.json() if response.status_code == 200 else httpx.get(url + "/metrics").json()


class Offline:
    """The export run in this process on texts already tokenised, in batches grouped by length: its texts/s."""

    def __init__(self, model: str, runtime: str, precision: str, threads: int, texts: Sequence[Dict[str, str]],
                 batch_size: int):
        from paddle_dynafast.runtime.bench import batches
        from paddle_dynafast.runtime.predictor import Predictor

        self.predictor = Predictor(model, runtime=runtime, threads=threads,
                                   **({"precision": precision} if precision != "fp32" else {}))
        pairs = "text_b" in texts[0]
        features, _ = self.predictor.encode([t["text"] for t in texts], [t["text_b"] for t in texts] if pairs else None)
        self.batches = batches(features, self.predictor.tokenizer.pad_token_id, batch_size)
        self.texts = len(features)

    def throughput(self, speed: float) -> float:
        started = time.perf_counter()
        for input_ids, token_type_ids, _ in self.batches:
            self.predictor.run_batch(input_ids, token_type_ids, speed)
        return self.texts / (time.perf_counter() - started)

    def expected(self, texts: Sequence[Dict[str, str]], speed: float) -> Dict[str, Any]:
        """``{text: (label, probs)}`` from Predictor (single texts only)."""
        unique = sorted({t["text"] for t in texts})
        result = self.predictor.predict(unique, speed=speed)
        return {t: (label, probs) for t, label, probs in zip(unique, result.labels, result.probs)}


def markdown(rows: List[Dict[str, Any]]) -> str:
    lines = ["| speed | server | requests/s | texts/s | offline texts/s | served / offline | p50 latency | p99 latency "
             "| requests per batch | mean exit layer |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['speed']:g} | {r['server']} | {r['requests_per_second']:.1f} | {r['texts_per_second']:.1f} "
                     f"| {r['offline_texts_per_second']:.1f} | {100 * r['served_over_offline']:.0f} % "
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
    parser.add_argument("--runtime", default="auto", help="runtime of every server (default auto: the fastest here)")
    parser.add_argument("--precision", default="fp32", help="precision of every server (fp32, bf16, int8)")
    parser.add_argument("--no-one-by-one", action="store_true", help="leave out the server without batching")
    parser.add_argument("--workers", type=int, default=1, help="also a server of N processes (--threads / N each)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=PYTHONPATH[:BLOCKED]",
                        help="also a batching server named NAME, importing paddle_dynafast from PYTHONPATH (empty: "
                             "this one) without the comma-separated BLOCKED modules; repeatable. Example: "
                             "--variant 'main, asyncio+h11=/work/main:uvloop,httptools'")
    parser.add_argument("--offline-batch", type=int, default=32, help="batch of the offline reference (default 32)")
    parser.add_argument("--atol", type=float, default=None,
                        help="largest difference of a probability from Predictor's (default 1e-4, int8 0.05)")
    parser.add_argument("--expected-out", action="store_true", help="also write expected-<speed>.json, Predictor's "
                                                                    "{text: [label, probs]}, for benchmarks/locustfile.py")
    parser.add_argument("--output", required=True, help="directory for serve_load.json and serve_load.md")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise (import paddle sets up root)
    atol = args.atol if args.atol is not None else (0.05 if args.precision == "int8" else 1e-4)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    texts = load_texts(args.data_dir, args.split, max(args.clients * args.requests * args.texts_per_request, 1))
    common = ["--threads", str(args.threads), "--precision", args.precision]
    runtime = args.runtime
    offline = None
    if runtime == "auto":  # every server and the offline reference on the one auto chooses here
        from paddle_dynafast.runtime.choose import choose

        runtime = str(choose(args.model, args.precision, args.threads)[0].runtime)
    common += ["--runtime", runtime]
    batching = common + (["--batch-window-ms", str(args.batch_window_ms)] if args.batch_window_ms is not None else [])
    batching += ["--max-batch-size", str(args.max_batch_size)] if args.max_batch_size is not None else []
    plans = [("batching", batching)]
    if not args.no_one_by_one:
        plans.append(("one by one", common + ["--no-batching"]))
    if args.workers > 1:
        plans.append((f"{args.workers} workers", batching + ["--workers", str(args.workers)]))
    launches = {name: (extra, "", "") for name, extra in plans}
    for variant in args.variant:
        name, _, where = variant.partition("=")
        pythonpath, _, blocked = where.partition(":")
        launches[name] = (batching, blocked, pythonpath)
    servers = {}
    try:
        for name, (extra, blocked, pythonpath) in launches.items():
            port = free_port()
            log = out / f"server-{re.sub(r'[^A-Za-z0-9]+', '-', name)}.log"
            servers[name] = (f"http://127.0.0.1:{port}", start_server(args.model, port, extra, log, blocked,
                                                                      pythonpath))
        offline = Offline(args.model, runtime, args.precision, args.threads, texts, args.offline_batch)
        expected = {speed: offline.expected(texts, speed) if "text_b" not in texts[0] else None
                    for speed in args.speeds}
        if args.expected_out:
            for speed, by_text in expected.items():
                (out / f"expected-{speed:g}.json").write_text(json.dumps(
                    {t: [label, probs.tolist()] for t, (label, probs) in (by_text or {}).items()}))
        runs: Dict[tuple, List[Dict[str, float]]] = {}
        offline_runs: Dict[float, List[float]] = {}
        for url, _ in servers.values():  # warm-up: every batch shape the runs will see, untimed
            for speed in args.speeds:
                run_load(url, payloads_of(texts, args.texts_per_request, speed), args.clients, 2)
        for speed in args.speeds:
            offline.throughput(speed)
        for round_ in range(args.rounds):
            for speed in args.speeds:
                offline_runs.setdefault(speed, []).append(offline.throughput(speed))
                payloads = payloads_of(texts, args.texts_per_request, speed)
                for name, (url, _) in servers.items():
                    before = metrics_of(url)
                    result = run_load(url, payloads, args.clients, args.requests)
                    worst = check_answers(result, payloads, expected[speed], atol)
                    after = metrics_of(url)
                    batches = after["batches"] - before["batches"]
                    layers = {k: after["exit_layer"]["histogram"].get(k, 0)
                              - before["exit_layer"]["histogram"].get(k, 0) for k in after["exit_layer"]["histogram"]}
                    row = {**result.summary(args.texts_per_request),
                           "requests_per_batch": len(result.answers) / batches if batches > 0 else float("nan"),
                           "mean_exit_layer": sum(int(k) * n for k, n in layers.items()) / max(sum(layers.values()), 1),
                           "largest_probability_difference": worst}
                    runs.setdefault((speed, name), []).append(row)
                    print(f"round {round_ + 1}, speed {speed:g}, {name}: {row}; offline "
                          f"{offline_runs[speed][-1]:.1f} texts/s", file=sys.stderr)
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(timeout=60)
    rows = []
    for (speed, name), values in runs.items():
        row = {"speed": speed, "server": name, **{k: statistics.median(r[k] for r in values) for k in values[0]},
               "offline_texts_per_second": statistics.median(offline_runs[speed])}
        row["served_over_offline"] = row["texts_per_second"] / row["offline_texts_per_second"]
        rows.append(row)
    table = markdown(rows)
    notes = []
    for speed in args.speeds:
        b = next(r for r in rows if r["speed"] == speed and r["server"] == "batching")
        for other in (r for r in rows if r["speed"] == speed and r["server"] != "batching"):
            notes.append(f"speed {speed:g}: batching gives {b['requests_per_second'] / other['requests_per_second']:.2f}x "
                         f"the throughput of {other['server']}, p50 {other['p50_ms'] / b['p50_ms']:.2f}x and p99 "
                         f"{other['p99_ms'] / b['p99_ms']:.2f}x lower latency")
    machine = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "python": platform.python_version(), "load_average": os.getloadavg()}
    (out / "serve_load.json").write_text(json.dumps({"args": vars(args), "runtime": runtime, "machine": machine,
                                                     "rows": rows,
                                                     "runs": {f"{s:g} {n}": v for (s, n), v in runs.items()},
                                                     "offline": {f"{s:g}": v for s, v in offline_runs.items()}},
                                                    indent=2))
    (out / "serve_load.md").write_text(table + "\n" + "\n".join(notes) + "\n")
    print(table + "\n" + "\n".join(notes))
    print(f"-> {out}/serve_load.{{json,md}}")


if __name__ == "__main__":
    main()
