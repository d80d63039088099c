"""Where a request's time goes in ``paddle-dynafast serve`` under load: a py-spy profile of the server, by stage.

Starts one batching server of the export (``-v``, so that the batching worker logs how long each batch waited and
ran), puts ``--clients`` concurrent clients of ``--texts-per-request`` texts on it (benchmarks/serve_load.py's
client) and records the server with py-spy (``--rate`` samples a second, every thread, only while it is on a CPU,
for ``--seconds``). Each sample is put in the stage of the innermost frame that names one (:data:`STAGES`): HTTP
parsing (uvicorn's protocol, httptools), reading the body, JSON and checks, tokenising, queueing and batching,
padding, the runtime call, building and encoding the answer, metrics, the event loop itself. Reported: the share of
the server's CPU samples per stage and thread (event loop, batching worker), the requests per second, and the
batching worker's median wait and run per batch (wall clock).

    .venv/bin/python benchmarks/serve_profile.py --model runs/sst2/export --data-dir ../shared/data/sst2 \\
        --runtime onnxruntime --precision int8 --seconds 20 --output runs/serve-profile

Set ``PYTHONPATH`` to profile another checkout of the server (the numbers before a change, say).
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # serve_load, beside this script

import serve_load  # noqa: E402

STAGES = (  # (stage, pattern on "function (file)"), innermost frame first: the first stage whose pattern matches
    ("runtime call", r"onnxruntime|paddle_inference\.py|run_batch \(.*(dygraph|onnx_runtime)\.py"),
    ("tokenising", r"wordpiece\.py|tokenizers|encoding\.py|predictor\.py.*encode|check_texts"),
    ("padding into batches", r"_predict \(.*batcher\.py"),
    ("answer: rows to JSON", r"to_dict|orjson|_send \(|serve\.py.*dumps"),
    ("queueing and batching", r"batcher\.py"),
    ("metrics", r"serve_metrics\.py|prometheus_client"),
    ("JSON parsing and checks", r"parse_request|_texts \(|_kind \("),
    ("reading the body", r"_read_body|receive \("),
    ("HTTP parsing and writing (uvicorn, httptools)", r"httptools|h11|uvicorn/protocols"),
    ("ASGI and the application", r"starlette|fastapi|serve\.py|uvicorn"),
    ("event loop (uvloop, asyncio)", r"uvloop|asyncio|selectors"),
)


def stage_of(frames) -> str:
    for frame in reversed(frames):  # innermost first
        for stage, pattern in STAGES:
            if re.search(pattern, frame):
                return stage
    return "other"


def thread_of(first: str) -> str:
    if "batcher" in first:
        return "batching worker"
    if "MainThread" in first or "main" in first.lower():
        return "event loop"
    return "other threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed", type=float, default=0.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples a second (default 200)")
    parser.add_argument("--block", default="", help="modules the server may not import, comma-separated (uvloop,"
                                                     "httptools: uvicorn's plain asyncio loop and h11 parser)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    port = serve_load.free_port()
    log = out / "server.log"
    server = serve_load.start_server(args.model, port, ["--threads", str(args.threads), "--runtime",
                                                        args.runtime, "--precision", args.precision], log,
                                     blocked=args.block, verbose=True)
    url = f"http://127.0.0.1:{port}"
    texts = serve_load.load_texts(args.data_dir, args.split, 2000)
    payloads = serve_load.payloads_of(texts, args.texts_per_request, args.speed)
    try:
        serve_load.run_load(url, payloads, args.clients, 5)  # warm-up
        raw = out / "py-spy.txt"
        py_spy = Path(sys.executable).with_name("py-spy")
        spy = subprocess.Popen([str(py_spy) if py_spy.exists() else "py-spy", "record", "--pid", str(server.pid), "--duration", str(args.seconds),
                                "--rate", str(args.rate), "--format", "raw", "--threads", "--nonblocking",
                                "--output", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        done = threading.Event()
        counted = []

        def drive():
            while not done.is_set():
                result = serve_load.run_load(url, payloads, args.clients, 20)
                counted.append((len(result.answers), result.seconds, result.latency_ms))

        driver = threading.Thread(target=drive)
        started = time.perf_counter()
        driver.start()
        _, err = spy.communicate(timeout=args.seconds + 120)
        done.set()
        driver.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    if not raw.is_file():
        raise SystemExit(f"py-spy wrote nothing: {err}")
    samples = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        samples[(thread_of(frames[0]), stage_of(frames[1:]))] += int(count)
    total = sum(samples.values())
    requests = sum(n for n, _, _ in counted)
    latency = [ms for _, _, lat in counted for ms in lat]
    waited, ran = [], []
    for line in log.read_text().splitlines():
        match = re.search(r"waited ([\d.]+) ms, ran ([\d.]+) ms", line)
        if match:
            waited.append(float(match.group(1)))
            ran.append(float(match.group(2)))
    rows = sorted(samples.items(), key=lambda kv: -kv[1])
    lines = [f"{requests / elapsed:.0f} requests/s of {args.texts_per_request} text(s), {args.clients} clients; p50 "
             f"{statistics.median(latency):.1f} ms; per batch: waited {statistics.median(waited):.1f} ms, ran "
             f"{statistics.median(ran):.1f} ms (medians of {len(ran)} batches); {total} CPU samples at {args.rate}/s "
             f"in {args.seconds} s = {total / args.rate / args.seconds:.2f} cores busy in the server",
             "", "| thread | stage | share of the server's CPU samples | CPU ms per request |", "| --- | --- | --- | --- |"]
    for (thread, stage), n in rows:
        lines.append(f"| {thread} | {stage} | {100 * n / total:.1f} % | {1000 * n / args.rate / requests:.3f} |")
    text = "\n".join(lines) + "\n"
    (out / "serve_profile.md").write_text(text)
    (out / "serve_profile.json").write_text(json.dumps({"args": vars(args), "requests": requests, "seconds": elapsed,
                                                        "samples": {f"{t} | {s}": n for (t, s), n in rows}}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
