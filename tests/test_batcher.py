"""The batcher: one worker runs queued requests together, grouped by speed and kind, bounded in size, in arrival
order; without batching every request runs alone; a failing batch answers its callers with the error and the worker
goes on; close runs what is queued, then refuses new requests; what it ran is counted in its metrics."""
import numpy as np
import pytest

from helpers import Recording
from paddle_dynafast.config import ServeConfig
from paddle_dynafast.runtime.batcher import MAX_PADDING, Batcher, BatcherClosed, PredictRequest, length_groups
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
        answers = [f.result(timeout=30).to_dict() for f in futures]
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
        answer = batcher.submit(PredictRequest(["good"], None, 0.0)).result(timeout=30).to_dict()
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
    answers = [f.result(timeout=0).to_dict() for f in [first, *queued]]  # answered before close returned
    assert [a["speed"] for a in answers] == [0.0, 0.3, 0.3, 0.3] and batcher.queued == 0
    with pytest.raises(BatcherClosed, match="the server is shutting down"):
        batcher.submit(PredictRequest(["good"], None, 0.0))
    snapshot = batcher.metrics.snapshot()
    assert snapshot["batches"] == 2 and snapshot["batch_requests"]["histogram"] == {"1": 1, "3": 1}
    assert snapshot["texts"] == 4 and sum(snapshot["exit_layer"]["histogram"].values()) == 4


def test_requests_are_tokenised_when_submitted_not_by_the_worker(runtime):
    """While the worker is held in a batch, a submitted request is already tokenised: the worker pads and runs."""
    batcher = Batcher(Predictor(runtime), ServeConfig(batch_window_ms=1))
    batcher.start()
    try:
        first = batcher.submit(PredictRequest(["good"], None, 0.0))
        assert runtime.entered.wait(30)
        batcher.submit(PredictRequest(["w1 good w2", "bad"], None, 0.0))
        (job,) = batcher._pending
        assert [f.input_ids for f in job.features] == [[2, 8, 5, 9, 3], [2, 6, 3]]  # [CLS] w1 good w2 [SEP]
        runtime.release.set()
        first.result(timeout=30)
    finally:
        batcher.close()


def test_a_dead_worker_answers_every_waiting_request_and_refuses_new_ones(runtime):
    """A bug that kills the worker: the waiting requests get BatcherClosed naming the error, so do new ones, and
    on_death is called once with the error. (A request the worker had taken from the queue: test_serve's dead
    worker test.)"""
    deaths = []
    batcher = Batcher(Predictor(runtime), ServeConfig(batch_window_ms=1), on_death=deaths.append)
    original = batcher._run

    def run_then_break(jobs):
        original(jobs)
        raise OverflowError("timeout value is too large")

    batcher._run = run_then_break
    batcher.start()
    first = batcher.submit(PredictRequest(["good"], None, 0.0))
    assert runtime.entered.wait(30)
    waiting = [batcher.submit(PredictRequest([f"w{i}"], None, 0.0)) for i in range(3)]
    runtime.release.set()
    assert len(first.result(timeout=30).labels) == 1  # its batch ran before the worker broke
    for future in waiting:
        with pytest.raises(BatcherClosed, match=r"the batching worker died \(OverflowError: timeout value is too"):
            future.result(timeout=30)
    with pytest.raises(BatcherClosed, match="the batching worker died"):
        batcher.submit(PredictRequest(["good"], None, 0.0))
    assert [type(e) for e in deaths] == [OverflowError] and not batcher.alive and batcher.queued == 0
    batcher.close(timeout=5)


def test_length_groups_pad_a_call_to_at_most_max_padding_of_its_tokens():
    lengths = np.array([10, 40, 12, 41, 11, 39])
    assert [g.tolist() for g in length_groups(lengths, 32)] == [[3, 1, 5, 2], [4, 0]]  # 164 <= 1.25 * 132
    assert [g.tolist() for g in length_groups(lengths, 2)] == [[3, 1], [5], [2, 4], [0]]
    assert [g.tolist() for g in length_groups(np.full(5, 7), 2)] == [[0, 1], [2, 3], [4]]
    assert length_groups(np.zeros(0, dtype="int64"), 8) == []
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(3, 65, size=rng.integers(1, 40))
        groups = length_groups(lengths, 8)
        assert sorted(np.concatenate(groups).tolist()) == list(range(len(lengths)))
        for g in groups:
            assert len(g) <= 8 and lengths[g].max() == lengths[g[0]]
            assert len(g) == 1 or lengths[g[0]] * len(g) <= MAX_PADDING * lengths[g].sum()


def test_a_batch_of_short_and_long_texts_runs_in_calls_by_length_and_answers_in_order(runtime):
    predictor = Predictor(runtime)
    runtime.release.set()
    short, long = "good", " ".join(["good w1 bad w2"] * 3)  # 3 and 14 tokens
    texts = [short, long, short, long]
    batcher = Batcher(predictor, ServeConfig(max_batch_size=8, batch_window_ms=1))
    batcher.start()
    try:
        answer = batcher.submit(PredictRequest(texts, None, 0.0)).result(timeout=30)
    finally:
        batcher.close()
    assert runtime.calls == [(0.0, 2), (0.0, 2)]  # one call of 4 would run 56 tokens for 34
    expected = predictor.predict(texts, speed=0.0)
    np.testing.assert_allclose(answer.probs, expected.probs, atol=1e-6)
    assert answer.labels == expected.labels
