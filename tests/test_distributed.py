"""Data parallelism: two CPU processes (gloo) with half the batch each equal one process with all of it."""
import json
import shutil
import time

import numpy as np
import paddle
import paddle.distributed as dist
import pytest
from safetensors.numpy import load_file

import dist_worker
from helpers import TINY, tiny_hf_weights, write_hf_dir, write_sentiment_data
from paddle_dynafast.data.batching import LengthGroupedBatchSampler

pytestmark = pytest.mark.filterwarnings("ignore")


def _weights(path):
    return load_file(str(path))


def test_two_processes_equal_one(tmp_path):
    """Each stage, from the same inputs, once in one process and once in two (gloo on CPU).

    Every text has the same length: the supernet's hidden-state MSE (PaddleSlim's
    ``calc_distill_loss``) averages over padded positions too, so ranks that pad
    differently weigh tokens differently and the equality would only be close.
    """
    toy_data = write_sentiment_data(tmp_path / "data", n_train=200, n_dev=48, n_test=48, words=(6, 6))
    # no dropout, so neither run draws random numbers while training
    pretrained = write_hf_dir(tmp_path / "pretrained", tiny_hf_weights(seed=0),
                              config={**TINY, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    started = time.time()
    checks = (("teacher", "model.safetensors"), ("supernet", "model.safetensors"),
              ("supernet", "width-0.5/model.safetensors"), ("dynafast", "branches.safetensors"))
    for index, stage in enumerate(("teacher", "supernet", "dynafast")):
        if index:  # the next stage starts from the same input in both runs
            previous = ("teacher", "supernet")[index - 1]
            shutil.rmtree(tmp_path / "two" / previous)
            shutil.copytree(tmp_path / "one" / previous, tmp_path / "two" / previous)
        args = (index, str(tmp_path / "one"), str(toy_data), str(pretrained))
        dist_worker.stage(*args)
        dist.spawn(dist_worker.stage, args=(index, str(tmp_path / "two"), *args[2:]), nprocs=2, backend="gloo")
        for name, weights in (c for c in checks if c[0] == stage):
            one, two = _weights(tmp_path / "one" / name / weights), _weights(tmp_path / "two" / name / weights)
            assert one.keys() == two.keys()
            for key in one:
                # The loss does not depend on a key bias (softmax ignores a shift shared by all keys): its exact
                # gradient is 0, what is computed is rounding noise, and Adam scales that up to steps near lr/10.
                tolerance = 1e-3 if key.endswith("k_proj.bias") else 1e-5
                np.testing.assert_allclose(two[key], one[key], atol=tolerance, err_msg=f"{name}/{weights}: {key}")
        assert json.loads((tmp_path / "two" / stage / "stage.json").read_text())["complete"]
    assert time.time() - started < 180  # a rank that hangs would wait out the 30-minute timeout; a busy machine takes ~60 s
    # importance computed once (rank 0) and broadcast: the same order as one process found
    assert (json.loads((tmp_path / "two" / "supernet" / "importance.json").read_text())["head_order"]
            == json.loads((tmp_path / "one" / "supernet" / "importance.json").read_text())["head_order"])


def test_batch_must_divide_among_processes():
    with pytest.raises(ValueError, match="batch size 16 does not divide among 3 processes"):
        LengthGroupedBatchSampler(list(range(40)), 16, shuffle=True, num_replicas=3, rank=0)


def test_sharded_batches_together_are_the_global_batches():
    lengths = list(np.random.default_rng(0).integers(3, 40, size=100))
    whole = LengthGroupedBatchSampler(lengths, 16, shuffle=True, seed=1, num_replicas=1, rank=0)
    parts = [LengthGroupedBatchSampler(lengths, 16, shuffle=True, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    full = whole.batches()  # 6 of 16 and one of 4, which splits 2 + 2
    assert [a + b for a, b in zip(parts[0].batches(), parts[1].batches())] == full
    assert len(parts[0]) == len(full) == 7
    thirds = [LengthGroupedBatchSampler(lengths[:99], 15, shuffle=True, seed=1, num_replicas=3, rank=r) for r in range(3)]
    assert [len(t.batches()) for t in thirds] == [len(t) for t in thirds] == [7, 7, 7]  # a last batch of 9 splits 3 x 3
    odd = LengthGroupedBatchSampler(lengths[:97], 16, shuffle=True, seed=1, num_replicas=2, rank=0)
    assert len(odd.batches()) == len(odd) == 6  # a last batch of 1 cannot split: dropped
    evaluation = [LengthGroupedBatchSampler(lengths, 16, shuffle=False, num_replicas=2, rank=r).batches() for r in (0, 1)]
    assert sorted(i for part in evaluation for b in part for i in b) == list(range(100))


def test_a_dying_rank_stops_the_others(tmp_path):
    started = time.time()
    with pytest.raises(Exception, match="terminated with exit code 3"):
        dist.spawn(dist_worker.die_on_rank_one, nprocs=2, backend="gloo")
    assert time.time() - started < 30


@pytest.mark.parametrize("env, expected", [(None, False), ("1", True)])
def test_setup_uses_the_socket_store_unless_told(monkeypatch, env, expected):
    """Paddle's libuv store can abort rank 0 at exit (see ``distributed.setup``): the socket store is the
    default; a ``FLAGS_tcp_store_using_libuv`` in the environment is left to Paddle."""
    from paddle_dynafast import distributed

    seen = {}
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_parallel_env",
                        lambda: seen.update(paddle.get_flags(["FLAGS_tcp_store_using_libuv"])))
    if env is None:
        monkeypatch.delenv("FLAGS_tcp_store_using_libuv", raising=False)
    else:
        monkeypatch.setenv("FLAGS_tcp_store_using_libuv", env)
    before = paddle.get_flags(["FLAGS_tcp_store_using_libuv"])
    try:
        distributed.setup()
        assert seen == {"FLAGS_tcp_store_using_libuv": expected}
    finally:
        paddle.set_flags(before)


def test_the_peer_timeout_is_set_inside_and_restored_after(monkeypatch):
    import os

    from paddle_dynafast import distributed

    monkeypatch.delenv("PADDLE_PG_TIMEOUT", raising=False)
    with distributed.peer_timeout(2.5):
        assert os.environ["PADDLE_PG_TIMEOUT"] == "2500"
    assert "PADDLE_PG_TIMEOUT" not in os.environ
    monkeypatch.setenv("PADDLE_PG_TIMEOUT", "60000")
    with pytest.raises(KeyboardInterrupt):
        with distributed.peer_timeout(30):
            assert os.environ["PADDLE_PG_TIMEOUT"] == "30000"
            raise KeyboardInterrupt
    assert os.environ["PADDLE_PG_TIMEOUT"] == "60000"
    with distributed.peer_timeout(None):  # not given: the environment's own
        assert os.environ["PADDLE_PG_TIMEOUT"] == "60000"
