"""The batcher: one worker runs queued requests together, grouped by speed and kind, bounded in size, in arrival
order; without batching every request runs alone; a failing batch answers its callers with the error and the worker
goes on; close runs what is queued, then refuses new requests; what it ran is counted in its metrics."""
import numpy as np
import pytest

from helpers import Recording
from paddle_dynafast.config import ServeConfig
from paddle_dynafast.runtime.batcher import Batcher, BatcherClosed, PredictRequest
from paddle_dynafast.runtime.predictor import Predictor


@pytest.fixture()
def runtime(tiny_exports):
    """A runtime on the tiny exit-loop export that holds its first call until ``release`` is set."""
    return Recording(Predictor(tiny_exports[(1.0, True)], threads=1).runtime, hold_first=True)


def test_batches_group_by_speed_keep_order_and_stay_within_the_size(runtime):
    """The worker is held in a first batch while ten requests of two speeds queue up; then each batch takes the
    oldest request and the following ones of its speed, up to max_batch_size texts, in arrival order."""
    predictor = Predictor(runtime)
    batcher = Batcher(predictor, ServeConfig(max_batch_size=8, batch_window_ms=1))
    batcher.start()
    try:
        first = batcher.submit(PredictRequest(["good"], None, 0.0))
        assert runtime.entered.wait(30)  # the worker is in the first batch
        requests = [PredictRequest([f"w{i} good", f"w{i} bad", f"w{i}"], None, 0.5 if i % 2 else 0.0)
                    for i in range(10)]
        futures = [batcher.submit(r) for r in requests]
        runtime.release.set()
        answers = [f.result(timeout=30) for f in futures]
        first.result(timeout=30)
    finally:
        batcher.close()
    # speeds 0 (requests 0, 2, 4, 6, 8) and 0.5 (1, 3, 5, 7, 9), three texts each, at most two per batch of 8
    assert runtime.calls == [(0.0, 1), (0.0, 6), (0.5, 6), (0.0, 6), (0.5, 6), (0.0, 3), (0.5, 3)]
    for request, answer in zip(requests, answers):
        expected = predictor.predict(request.texts, speed=request.speed)
        assert [p["label"] for p in answer["predictions"]] == expected.labels and answer["speed"] == request.speed
        np.testing.assert_allclose([p["probs"] for p in answer["predictions"]], expected.probs, atol=1e-5)


def test_without_batching_every_request_runs_alone(runtime):
    batcher = Batcher(Predictor(runtime), ServeConfig(batching=False))
    batcher.start()
    try:
        futures = [batcher.submit(PredictRequest(["good", "bad"], None, 0.0))]
        assert runtime.entered.wait(30)
        futures += [batcher.submit(PredictRequest(["good", "bad"], None, 0.0)) for _ in range(3)]  # all waiting
        runtime.release.set()
        [f.result(timeout=30) for f in futures]
    finally:
        batcher.close()
    assert runtime.calls == [(0.0, 2)] * 4


def test_pairs_and_single_texts_never_share_a_batch(runtime):
    batcher = Batcher(Predictor(runtime), ServeConfig(max_batch_size=8, batch_window_ms=1))
    batcher.start()
    try:
        first = batcher.submit(PredictRequest(["good"], None, 0.0))
        assert runtime.entered.wait(30)
        futures = [batcher.submit(PredictRequest(["good w1"], ["bad w2"] if i % 2 else None, 0.0)) for i in range(4)]
        runtime.release.set()
        [f.result(timeout=30) for f in [first, *futures]]
    finally:
        batcher.close()
    assert runtime.calls == [(0.0, 1), (0.0, 2), (0.0, 2)]  # the single texts 0 and 2, then the pairs 1 and 3


def test_a_failing_batch_answers_its_callers_with_the_error_and_the_worker_goes_on(runtime):
    batcher = Batcher(Predictor(runtime), ServeConfig(batch_window_ms=1))
    batcher.start()
    try:
        runtime.fail = True
        broken = batcher.submit(PredictRequest(["good", "bad"], None, 0.0))
        runtime.release.set()
        with pytest.raises(RuntimeError, match="the runtime broke"):
            broken.result(timeout=30)
        answer = batcher.submit(PredictRequest(["good"], None, 0.0)).result(timeout=30)
    finally:
        batcher.close()
    assert len(answer["predictions"]) == 1 and answer["speed"] == 0.0
    snapshot = batcher.metrics.snapshot()
    assert (snapshot["batches"], snapshot["texts"]) == (1, 1)  # the failed batch is not counted as run


def test_close_runs_what_is_queued_then_refuses(runtime):
    batcher = Batcher(Predictor(runtime), ServeConfig(batch_window_ms=1))
    batcher.start()
    first = batcher.submit(PredictRequest(["good"], None, 0.0))
    assert runtime.entered.wait(30)
    queued = [batcher.submit(PredictRequest([f"w{i} good"], None, 0.3)) for i in range(3)]
    assert batcher.queued == 3
    runtime.release.set()
    batcher.close(timeout=30)
    answers = [f.result(timeout=0) for f in [first, *queued]]  # answered before close returned
    assert [a["speed"] for a in answers] == [0.0, 0.3, 0.3, 0.3] and batcher.queued == 0
    with pytest.raises(BatcherClosed, match="the server is shutting down"):
        batcher.submit(PredictRequest(["good"], None, 0.0))
    snapshot = batcher.metrics.snapshot()
    assert snapshot["batches"] == 2 and snapshot["batch_requests"]["histogram"] == {"1": 1, "3": 1}
    assert snapshot["texts"] == 4 and sum(snapshot["exit_layer"]["histogram"].values()) == 4
