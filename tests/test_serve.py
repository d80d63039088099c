"""The HTTP server: answers equal Predictor's, every bad request is a 4xx naming it, a failing batch is a 500 and the
server goes on, a bounded load test loses nothing and batching groups its requests, and SIGTERM or Ctrl-C answers the
requests in flight before the process exits. Real servers on loopback ports, real HTTP. (How the worker groups
requests into batches: test_batcher.py; the load benchmark benchmarks/serve_load.py: test_serve_load.py.)"""
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from helpers import Recording, free_port, pairs_of, texts_of, wait_until_healthy
from paddle_dynafast import cli
from paddle_dynafast.config import ServeConfig
from paddle_dynafast.runtime.predictor import Predictor
from paddle_dynafast.runtime.serve import ModelServer

LIMITS = dict(max_texts=8, max_request_bytes=4096)


@pytest.fixture(scope="module")
def server(tiny_exports):
    predictor = Predictor(Recording(Predictor(tiny_exports[(1.0, True)], threads=1).runtime))
    with ModelServer(predictor, ServeConfig(port=0, batch_window_ms=5, **LIMITS)) as running:
        yield running


def post(server, body, **kwargs):
    if not isinstance(body, (dict, list)):  # raw bytes, or a generator of chunks
        return httpx.post(server.url + "/predict", content=body, timeout=30, **kwargs)
    return httpx.post(server.url + "/predict", json=body, timeout=30, **kwargs)


def test_answers_equal_the_predictor_at_every_speed(server, tiny_exports, toy_data):
    texts = texts_of(toy_data, 24)
    reference = Predictor(tiny_exports[(1.0, True)], threads=1)
    for speed in (0.0, 0.3, 1.0):
        expected = reference.predict(texts, speed=speed)
        got = [p for start in range(0, 24, 8)
               for p in post(server, {"texts": texts[start:start + 8], "speed": speed}).json()["predictions"]]
        assert [p["label"] for p in got] == expected.labels
        assert [p["exit_layer"] for p in got] == expected.exit_layer.tolist()
        np.testing.assert_allclose([p["probs"] for p in got], expected.probs, atol=1e-5)
    default = post(server, {"texts": texts[:2]}).json()
    assert default["speed"] == 0.0 and [p["exit_layer"] for p in default["predictions"]] == [2, 2]
    long = post(server, {"texts": ["w1 " * 40 + "good", "bad"]}).json()["predictions"]
    assert [p["truncated"] for p in long] == [True, False]


def test_pairs_over_http_equal_the_predictor(tiny_pair_export, pair_data):
    a, b, _ = pairs_of(pair_data, 8)
    predictor = Predictor(tiny_pair_export, threads=1)
    with ModelServer(predictor, ServeConfig(port=0)) as running:
        got = post(running, {"texts": a, "text_b": b, "speed": 0.3}).json()["predictions"]
        single = post(running, {"texts": a[:2], "speed": 0.3}).json()["predictions"]
    expected = predictor.predict(a, speed=0.3, text_b=b)
    np.testing.assert_allclose([p["probs"] for p in got], expected.probs, atol=1e-5)
    assert [p["exit_layer"] for p in got] == expected.exit_layer.tolist()
    np.testing.assert_allclose([p["probs"] for p in single], predictor.predict(a[:2], speed=0.3).probs, atol=1e-5)


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "malformed JSON: unexpected character, expected a string key: line 1 column 2"),
    (b"", 400, "malformed JSON: Input is a zero-length, empty document"),
    (b"\xff\xfe{", 400, "malformed JSON: str is not valid UTF-8"),
    (b"[" * 2000, 400, "malformed JSON: nested deeper than 1024 levels"),  # 100 000 deep too (max_request_bytes)
    (b'{"texts": [[[[[["good"]]]]]]}', 422, "texts[0] must be a string, got an array"),
    (b'["good"]', 422, 'the body must be a JSON object like {"texts": ["..."]}, got an array'),
    ({}, 422, '"texts" is missing: give a list of strings'),
    ({"text": ["good"]}, 422, "unknown field(s) ['text']; a request has ['texts', 'text_b', 'speed']"),
    ({"texts": "good w1"}, 422, '"texts" must be a list of strings, got a string'),
    ({"texts": []}, 422, '"texts" is empty: give at least one text'),
    ({"texts": ["good", " "]}, 422, "texts[1] is empty"),
    ({"texts": ["good", 3]}, 422, "texts[1] must be a string, got a number"),
    ({"texts": ["good", None]}, 422, "texts[1] must be a string, got null"),
    ({"texts": ["good"], "speed": 1.5}, 422, "speed 1.5 is not in [0, 1]"),
    ({"texts": ["good"], "speed": -0.1}, 422, "speed -0.1 is not in [0, 1]"),
    (b'{"texts": ["good"], "speed": NaN}', 400, "malformed JSON: unexpected character, expected a JSON value"),
    (b'{"texts": ["good"], "speed": 1e999}', 400, "malformed JSON: number is infinity"),
    ({"texts": ["good"], "speed": "fast"}, 422, '"speed" must be a number in [0, 1], got a string'),
    ({"texts": ["good"], "speed": True}, 422, '"speed" must be a number in [0, 1], got a boolean'),
    ({"texts": ["good"], "text_b": ["bad", "w1"]}, 422, "2 text_b for 1 texts: give one second text per text"),
    ({"texts": ["good"], "text_b": [""]}, 422, "text_b[0] is empty"),
    ({"texts": ["good"] * 9}, 413, "9 texts in one request; the limit is 8 (max_texts)"),
    ({"texts": ["good " * 1000]}, 413, "is over the limit of 4096 (max_request_bytes)"),
])
def test_bad_requests_get_a_4xx_naming_the_problem(server, body, status, message):
    before = httpx.get(server.url + "/metrics.json").json()["requests"]
    response = post(server, body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    after = httpx.get(server.url + "/metrics.json").json()["requests"]
    assert after["client_errors"] == before["client_errors"] + 1 and after["ok"] == before["ok"]
    assert post(server, {"texts": ["good w1"]}).status_code == 200  # and it goes on serving


def test_a_body_streamed_past_the_limit_is_refused(server):
    def chunks():  # no Content-Length: the server counts as it reads
        yield b'{"texts": ["'
        for _ in range(100):
            yield b"w1 " * 20
        yield b'"]}'

    response = post(server, chunks())
    assert response.status_code == 413 and "over the limit of 4096 bytes" in response.json()["detail"]


def test_an_internal_failure_is_a_500_and_the_server_goes_on(server):
    runtime = server.predictor.runtime
    before = httpx.get(server.url + "/metrics.json").json()["requests"]["server_errors"]
    runtime.fail = True
    response = post(server, {"texts": ["good w1"]})
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error (RuntimeError); the server log has its traceback"
    assert post(server, {"texts": ["good w1"]}).status_code == 200
    assert httpx.get(server.url + "/metrics.json").json()["requests"]["server_errors"] == before + 1


def test_a_probability_that_is_not_finite_is_a_500_never_a_number(server, monkeypatch):
    """A text the model answers with NaN (issue 25: never print a non-finite number; orjson would write null): its
    request gets a 500 naming the text, the others in the same batch their answers, and the server goes on."""
    runtime = server.predictor.runtime
    inner = runtime.inner.run_batch

    def nan_for_long_texts(input_ids, token_type_ids, speed=0.0):
        probs, exit_layer = inner(input_ids, token_type_ids, speed)
        probs = np.array(probs, dtype="float32")
        probs[(np.asarray(input_ids) != 0).sum(-1) > 6] = np.nan  # texts of more than 4 words
        return probs, exit_layer

    monkeypatch.setattr(runtime.inner, "run_batch", nan_for_long_texts)
    before = httpx.get(server.url + "/metrics.json").json()["requests"]["server_errors"]
    with ThreadPoolExecutor(2) as pool:  # both in one batch (5 ms window)
        bad, good = pool.map(lambda texts: post(server, {"texts": texts}),
                             [["good w1", "bad w2 w1 w1 w1 w1 w1"], ["good w1", "bad w2"]])
    assert bad.status_code == 500 and "probs" not in bad.text and "null" not in bad.text
    assert bad.json()["detail"] == ("internal error: the model gave probabilities that are not finite (NaN or "
                                    "infinity) for texts[1]; the server log has them")
    assert good.status_code == 200 and all(np.isfinite(p["probs"]).all() for p in good.json()["predictions"])
    monkeypatch.undo()
    assert post(server, {"texts": ["bad w2 w1 w1 w1 w1 w1"]}).status_code == 200
    assert httpx.get(server.url + "/metrics.json").json()["requests"]["server_errors"] == before + 1


def test_a_body_nested_100000_deep_is_a_400_under_the_default_limits():
    from paddle_dynafast.runtime.serve import RequestError, parse_request

    for body in (b"[" * 100_000, b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        assert len(body) < ServeConfig().max_request_bytes
        with pytest.raises(RequestError, match=r"^malformed JSON: nested deeper than 1024 levels$") as caught:
            parse_request(body, ServeConfig())
        assert caught.value.status == 400


def test_health_and_metrics(server, tiny_exports):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["model"] == str(tiny_exports[(1.0, True)])
    assert (health["runtime"], health["exit_loop"], health["num_layers"], health["max_texts"]) == (
        "paddle-inference", True, 2, 8)
    post(server, {"texts": ["good w1", "bad w2", "w3 good"], "speed": 1.0})
    metrics = httpx.get(server.url + "/metrics.json").json()
    assert sum(metrics["exit_layer"]["histogram"].values()) == metrics["texts"]
    assert sum(int(k) * n for k, n in metrics["batch_texts"]["histogram"].items()) == metrics["texts"]
    assert metrics["latency_ms"]["requests"] == metrics["requests"]["ok"] > 0
    assert 0 < metrics["latency_ms"]["p50"] <= metrics["latency_ms"]["p90"] <= metrics["latency_ms"]["p99"]
    assert httpx.get(server.url + "/nothing").status_code == 404
    assert httpx.get(server.url + "/predict").status_code == 405


def load(url: str, payloads, clients: int, requests: int):
    """``clients`` threads, each posting ``requests`` requests one after another (client ``c``'s ``r``-th is
    ``payloads[(c * requests + r) % len(payloads)]``): ``(payload index, status, body)`` of every request, the
    latencies in ms and the seconds it took."""
    def one_client(c):
        answers, latency = [], []
        with httpx.Client(base_url=url, timeout=120) as client:
            for r in range(requests):
                index = (c * requests + r) % len(payloads)
                started = time.perf_counter()
                response = client.post("/predict", json=payloads[index])
                latency.append(1000 * (time.perf_counter() - started))
                answers.append((index, response.status_code, response.json()))
        return answers, latency

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(one_client, range(clients)))
    seconds = time.perf_counter() - started
    return [a for answers, _ in done for a in answers], [ms for _, latency in done for ms in latency], seconds


def test_load_loses_nothing_and_batching_gains(tiny_exports, toy_data, capsys):
    """8 clients x 12 requests of one text, with and without dynamic batching, on the tiny model: every request gets
    exactly one answer, its own (the probabilities of its own text), and batching puts several requests in a batch.
    Throughput and p50/p99 are reported (pytest -s shows them); the README's figures come from
    benchmarks/serve_load.py."""
    texts = texts_of(toy_data, 48)
    expected = Predictor(tiny_exports[(1.0, True)], threads=1).predict(texts, speed=0.3)
    payloads = [{"texts": [t], "speed": 0.3} for t in texts]
    report = {}
    for name, config in (("batching", ServeConfig(port=0, batch_window_ms=5)),
                         ("one by one", ServeConfig(port=0, batching=False))):
        with ModelServer(Predictor(tiny_exports[(1.0, True)], threads=1), config) as running:
            load(running.url, payloads, clients=8, requests=2)  # warm-up
            answers, latency, seconds = load(running.url, payloads, clients=8, requests=12)
            metrics = running.metrics
        assert len(answers) == 96 and len({i for i, _, _ in answers}) == 48
        for index, status, body in answers:  # each caller got one answer, 200, the rows of its own text
            assert status == 200 and len(body["predictions"]) == 1, body
            np.testing.assert_allclose(body["predictions"][0]["probs"], expected.probs[index], atol=1e-5)
        report[name] = {"requests_per_second": round(len(answers) / seconds, 1),
                        "p50_ms": round(float(np.percentile(latency, 50)), 2),
                        "p99_ms": round(float(np.percentile(latency, 99)), 2),
                        "requests_per_batch": metrics["batch_requests"]["mean"]}
    with capsys.disabled():
        print(f"\nload test, tiny model, 8 clients x 12 requests: {json.dumps(report)}")
    assert report["one by one"]["requests_per_batch"] == 1.0
    assert report["batching"]["requests_per_batch"] > 1.5


def _ctrl_c_as_in_a_terminal() -> None:
    """A process started in the background (``cmd &``) inherits SIGINT ignored, and Python then never turns it
    into KeyboardInterrupt; the server must be tested as a user's Ctrl-C reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_drains_the_requests_in_flight_then_exits(tiny_exports, sig):
    """Three requests wait in a 3-second batch window when the signal comes: all three are answered, then the process
    exits (uvicorn re-raises the signal after the drain: SIGTERM's default action, KeyboardInterrupt for Ctrl-C).
    With -v (the Ctrl-C run) the server logs one line per batch."""
    port = free_port()
    verbose = ["-v"] if sig == signal.SIGINT else []
    process = subprocess.Popen([sys.executable, "-m", "paddle_dynafast", *verbose, "serve", "--model",
                                str(tiny_exports[(1.0, True)]), "--port", str(port), "--threads", "1",
                                "--batch-window-ms", "3000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(process, url, seconds=120)
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(httpx.post, url + "/predict", json={"texts": [t]}, timeout=30)
                       for t in ("good w1", "bad w2", "w3 good")]
            while httpx.get(url + "/metrics.json", timeout=5).json()["queued_requests"] < 3:  # all three in the window
                assert not any(f.done() for f in futures) and time.monotonic() < deadline
                time.sleep(0.05)
            process.send_signal(sig)
            responses = [f.result() for f in futures]
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(len(r.json()["predictions"]) == 1 for r in responses)
    assert process.returncode in ((-signal.SIGTERM, 0) if sig == signal.SIGTERM else (130,)), err
    assert "stopped after 3 request(s) (3 ok) in 1 batch(es)" in err
    assert "serving " in err and f"on http://127.0.0.1:{port}" in err
    batch_lines = [line for line in err.splitlines() if "paddle_dynafast.runtime.batcher: batch " in line]
    if verbose:
        assert len(batch_lines) == 1 and "batch 1: 3 request(s), 3 text(s), speed 0, waited " in batch_lines[0]
    else:
        assert batch_lines == [] and "Traceback" not in err


def test_serve_command_errors_are_one_line(tiny_exports, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(["serve", "--model", str(tiny_exports[(1.0, True)]), "--port", str(port), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and f"paddle-dynafast serve: error: cannot listen on 127.0.0.1:{port}: Address already in use" in err
    assert cli.main(["serve", "--model", str(tiny_exports[(1.0, True)]), "--speed", "2", "--port", "0"]) == 2
    assert "speed 2.0 is not in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("changes, message", [
    ({"port": 70000}, "port 70000 is not in [0, 65535]"),
    ({"batch_window_ms": -1}, "batch_window_ms must be in [0, 10000], got -1"),
    ({"batch_window_ms": float("inf")}, "batch_window_ms must be in [0, 10000], got inf"),
    ({"batch_window_ms": float("nan")}, "batch_window_ms must be in [0, 10000], got nan"),
    ({"max_batch_size": 10 ** 6}, "max_batch_size must be in [1, 4096], got 1000000"),
    ({"max_request_bytes": 1 << 40}, "max_request_bytes must be in [1, 1073741824], got 1099511627776"),
    ({"drain_seconds": float("inf")}, "drain_seconds must be > 0 and <= 3600, got inf"),
    ({"idle_seconds": 0}, "idle_seconds must be > 0 and <= 3600, got 0"),
    ({"body_seconds": -1.0}, "body_seconds must be > 0 and <= 3600, got -1.0"),
    ({"max_connections": 0}, "max_connections must be a whole number >= 1, got 0"),
    ({"workers": 10 ** 4}, "workers 10000 is more than the "),
    ({"speed": float("nan")}, "speed nan is not in [0, 1]"),
    ({"max_batch_size": 0}, "max_batch_size must be a whole number >= 1, got 0"),
    ({"max_texts": 2.5}, "max_texts must be a whole number >= 1, got 2.5"),
    ({"speed": 1.5}, "speed 1.5 is not in [0, 1]"),
    ({"drain_seconds": 0}, "drain_seconds must be > 0 and <= 3600, got 0"),
])
def test_serve_config_names_bad_values(changes, message):
    with pytest.raises(ValueError) as error:
        ServeConfig(**changes)
    assert message in str(error.value)


def test_the_server_stops_cleanly_from_a_thread(tiny_exports):
    server = ModelServer(Predictor(tiny_exports[(0.5, False)], threads=1), ServeConfig(port=0)).start()
    answered = threading.Event()

    def client():
        assert httpx.post(server.url + "/predict", json={"texts": ["good"]}, timeout=30).status_code == 200
        answered.set()

    worker = threading.Thread(target=client)
    worker.start()
    worker.join()
    server.stop()
    assert answered.is_set() and not server.app.state.batcher._thread.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health", timeout=2)


def test_metrics_are_prometheus_text_that_prometheus_client_parses(server):
    from prometheus_client.parser import text_string_to_metric_families

    post(server, {"texts": ["good w1", "bad w2"], "speed": 1.0})
    post(server, {"texts": []})
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    snapshot = httpx.get(server.url + "/metrics.json").json()
    requests = {s.labels["status"]: s.value for s in families["paddle_dynafast_requests"].samples
                if s.name.endswith("_total")}
    assert requests == {status: float(n) for status, n in snapshot["requests"]["by_status"].items()}
    assert requests["200"] >= 1 and requests["422"] >= 1
    texts = next(s.value for s in families["paddle_dynafast_texts"].samples if s.name.endswith("_total"))
    assert texts == snapshot["texts"]
    layers = {s.labels["layer"]: s.value for s in families["paddle_dynafast_exit_layer_texts"].samples
              if s.name.endswith("_total")}
    assert layers == {k: float(n) for k, n in snapshot["exit_layer"]["histogram"].items()}
    batch = {s.name: s.value for s in families["paddle_dynafast_batch_texts"].samples}
    assert batch["paddle_dynafast_batch_texts_count"] == snapshot["batches"]
    assert batch["paddle_dynafast_batch_texts_sum"] == snapshot["texts"]
    latency = {s.name: s for s in families["paddle_dynafast_request_latency_seconds"].samples}
    assert latency["paddle_dynafast_request_latency_seconds_count"].value == snapshot["requests"]["ok"]
    assert families["paddle_dynafast_worker_up"].samples[0].value == 1.0
    assert families["paddle_dynafast_open_connections"].type == "gauge"


def _raw(server, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


HEAD = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"


def test_a_body_that_never_ends_is_a_408_and_a_client_that_leaves_is_not_a_server_error(tiny_exports):
    config = ServeConfig(port=0, body_seconds=1.0, idle_seconds=30)
    with ModelServer(Predictor(tiny_exports[(0.5, False)], threads=1), config) as running:
        started = time.monotonic()
        sock = _raw(running, HEAD + b'transfer-encoding: chunked\r\n\r\n5\r\n{"tex\r\n')  # and nothing more
        answer = _read_all(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408 ") and 1.0 <= time.monotonic() - started < 10
        assert b'"detail":"the body did not arrive whole within 1 s (body_seconds)"' in answer
        gone = _raw(running, HEAD + b"content-length: 100\r\n\r\n{\"texts\"")
        time.sleep(0.2)
        gone.close()  # the client goes away mid-body
        deadline = time.monotonic() + 10
        while running.metrics["requests"]["client_gone"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        requests = running.metrics["requests"]
        assert requests["server_errors"] == 0 and requests["by_status"] == {"408": 1, "499": 1}
        assert post(running, {"texts": ["good"]}).status_code == 200


def test_idle_connections_are_closed_and_their_number_is_bounded(tiny_exports):
    """60 connections that send nothing, with room for 20: the oldest idle ones are closed for the new ones, a normal
    request is still answered, and after idle_seconds the idle ones are closed too."""
    config = ServeConfig(port=0, max_connections=20, idle_seconds=1.5)
    with ModelServer(Predictor(tiny_exports[(0.5, False)], threads=1), config) as running:
        idle = [socket.create_connection(("127.0.0.1", running.port), timeout=30) for _ in range(60)]
        started = time.monotonic()
        assert post(running, {"texts": ["good"]}).status_code == 200
        assert time.monotonic() - started < 1.0
        closed = running.metrics["connections"]["closed"]
        assert closed["evicted"] >= 40 and running.metrics["connections"]["open"] <= 20
        for sock in idle:
            assert _read_all(sock) == b""  # closed by the server: evicted at once, or idle after 1.5 s
            sock.close()
        assert time.monotonic() - started >= 1.0
        metrics = running.metrics
        assert metrics["connections"]["closed"].get("idle", 0) >= 1 and metrics["requests"]["server_errors"] == 0
        assert metrics["connections"]["closed"]["evicted"] + metrics["connections"]["closed"]["idle"] >= 60


def test_a_dead_worker_stops_the_server_with_an_error(tiny_exports):
    from paddle_dynafast.runtime.serve import ServerError

    running = ModelServer(Predictor(tiny_exports[(0.5, False)], threads=1), ServeConfig(port=0)).start()
    batcher = running.app.state.batcher
    original = batcher._next_batch

    def broken():
        original()
        raise OverflowError("timeout value is too large")

    batcher._next_batch = broken
    assert post(running, {"texts": ["good"]}).status_code == 200  # the worker was waiting in the unbroken call
    response = post(running, {"texts": ["good"]})  # taken from the queue, then the worker dies
    assert response.status_code == 503
    assert response.json()["detail"] == ("the batching worker died (OverflowError: timeout value is too large); the "
                                         "server is stopping")
    running._thread.join(30)
    assert not running._thread.is_alive()  # it stopped by itself
    assert running.metrics["requests"]["by_status"] == {"200": 1, "503": 1}
    with pytest.raises(ServerError, match=r"the batching worker died \(OverflowError"):
        running.stop()


def test_a_connection_open_at_the_stop_whose_request_comes_late_is_answered(tiny_exports):
    """A client that opened its connection before the stop and sends its request 0.5 s after it (a loaded client)
    gets its answer: uvicorn's own stop would close such a connection unanswered. One that sends nothing is closed
    after idle_seconds, and the stop does not wait longer than that."""
    config = ServeConfig(port=0, idle_seconds=2.0)
    running = ModelServer(Predictor(tiny_exports[(0.5, False)], threads=1), config).start()
    late, silent = socket.create_connection(("127.0.0.1", running.port), timeout=30), \
        socket.create_connection(("127.0.0.1", running.port), timeout=30)
    time.sleep(0.1)  # both accepted
    started = time.monotonic()
    stopping = threading.Thread(target=running.stop)
    stopping.start()
    time.sleep(0.5)
    body = b'{"texts": ["good"]}'
    late.sendall(HEAD + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    answer = _read_all(late)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert _read_all(silent) == b""
    stopping.join(30)
    assert not stopping.is_alive() and 1.5 <= time.monotonic() - started < 10
    late.close()
    silent.close()


def test_sigterm_during_a_burst_answers_every_accepted_connection(tiny_exports):
    """64 clients connect and post one after another, 5 ms apart, while SIGTERM comes: each gets its answer (200) or,
    once the server stopped listening, has its connection refused, and none is reset after it was accepted."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "paddle_dynafast", "serve", "--model",
                                str(tiny_exports[(0.5, False)]), "--port", str(port), "--threads", "1",
                                "--batch-window-ms", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, seconds=120)

        def client(i):
            time.sleep(0.005 * i)
            try:
                with httpx.Client(timeout=60) as c:  # a new connection per client
                    return c.post(url + "/predict", json={"texts": [f"w{i} good"]}).status_code
            except httpx.ConnectError:
                return "refused"
            except httpx.TransportError as error:
                return f"lost: {type(error).__name__}"

        with ThreadPoolExecutor(64) as pool:
            futures = [pool.submit(client, i) for i in range(64)]
            time.sleep(0.15)
            process.send_signal(signal.SIGTERM)
            outcomes = [f.result() for f in futures]
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert set(outcomes) <= {200, "refused"}, outcomes
    assert outcomes.count(200) >= 1 and process.returncode in (-signal.SIGTERM, 0), err


def test_two_worker_processes_share_the_port_and_add_up_their_metrics(tiny_exports):
    """serve --workers 2: two processes answer on one port (each answers some of 24 new connections), /metrics adds
    up both processes' counts, and SIGTERM stops both."""
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "paddle_dynafast", "serve", "--model",
                                str(tiny_exports[(0.5, False)]), "--port", str(port), "--threads", "2", "--workers",
                                "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, seconds=180)
        time.sleep(3)  # both processes up
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: httpx.post(url + "/predict", json={"texts": [f"w{i} good"]}, timeout=60),
                                    range(24)))
        assert [a.status_code for a in answers] == [200] * 24
        pids = {httpx.get(url + "/metrics.json", timeout=10).json()["pid"] for _ in range(40)}
        text = httpx.get(url + "/metrics", timeout=10).text
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ok = sum(s.value for s in families["paddle_dynafast_requests"].samples
             if s.name.endswith("_total") and s.labels["status"] == "200")
    assert ok == 24 and len(pids) == 2, (ok, pids)
    assert "serving " in err and "with 2 processes of 1 thread(s)" in err and process.returncode in (0, -signal.SIGTERM)


def test_a_listener_that_refuses_new_connections_keeps_its_queue():
    """What the stop relies on: with the filter on, a connection already queued is still accepted, a new one gets
    no handshake (its client waits and retries), and once the socket is closed the next is refused."""
    import socket

    from paddle_dynafast.runtime.serve import refuse_new_connections

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port))
    time.sleep(0.05)
    assert refuse_new_connections(listener)
    late = socket.socket()
    late.settimeout(0.3)
    with pytest.raises(TimeoutError):
        late.connect(("127.0.0.1", port))
    listener.setblocking(False)
    accepted = listener.accept()[0]
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    for s in (queued, late, accepted):
        s.close()
