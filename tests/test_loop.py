"""The shared training loop: its learning-rate schedule, optimizer-state names and Ctrl-C handling.

Resume to identical weights is tested through every stage (test_finetune, test_supernet, test_distill)."""
import json
import random
import signal

import numpy as np
import paddle
import pytest

from paddle_dynafast.config import TrainConfig
from paddle_dynafast.train import loop


def test_linear_schedule():
    schedule = loop._linear_schedule(1.0, total_steps=10, warmup_steps=4)
    values = []
    for _ in range(10):
        values.append(schedule.get_lr())
        schedule.step()
    np.testing.assert_allclose(values, [0.2, 0.4, 0.6, 0.8, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])


def test_optimizer_state_is_keyed_by_structured_names(tmp_path):
    """Paddle names parameters by a process-wide counter (linear_7.w_0); a resumed process counts differently, so
    the checkpoint keys the optimizer state by the layer's own names and maps them back on load."""
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Linear(2, 3), paddle.nn.Linear(3, 1))
    data = [{"x": paddle.ones([4, 2])}]

    class Loader(list):
        batch_sampler = type("S", (), {"set_epoch": lambda self, epoch: None})()

    train = loop.TrainLoop(model, TrainConfig(epochs=1, batch_size=4), Loader(data), tmp_path / "ckpt",
                           lambda batch: model(batch["x"]).mean(), lambda: {"score": 0.0}, lambda metrics: None)
    train.run()
    structured = train._optimizer_state(to_structured=True)
    assert any(key.startswith("0.weight_moment1") for key in structured), sorted(structured)
    assert not any(key.startswith("linear_") for key in structured if key != "LR_Scheduler")
    back = train._optimizer_state(structured, to_structured=False)
    assert back.keys() == train.optimizer.state_dict().keys()


def test_first_ctrl_c_only_asks_to_stop():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the tests were started in the background
    with loop._stop_request() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_seed_everything_repeats_every_generator():
    draws = []
    for _ in range(2):
        loop.seed_everything(7)
        draws.append((paddle.rand([2]).numpy().tolist(), np.random.rand(), __import__("random").random()))
    assert draws[0] == draws[1]


class _Loader(list):
    batch_sampler = type("S", (), {"set_epoch": lambda self, epoch: None})()


def _tiny_loop(tmp_path, loss_of_step, steps=6, **kwargs):
    paddle.seed(0)
    model = paddle.nn.Linear(2, 1)
    calls = []

    def loss(batch):
        calls.append(1)
        return (model(batch["x"]).mean() * 0 + loss_of_step(len(calls))).mean()

    data = _Loader([{"x": paddle.ones([4, 2])}] * steps)
    return model, loop.TrainLoop(model, TrainConfig(epochs=1, batch_size=4), data, tmp_path / "ckpt", loss,
                                 lambda: {"score": 0.0}, lambda metrics: None, save_every=2, **kwargs)


def test_a_non_finite_loss_stops_training_at_its_step(tmp_path):
    from paddle_dynafast.errors import TrainingError

    def loss(step):
        return paddle.to_tensor(float("nan") if step == 5 else 1.0, stop_gradient=False)

    model, train = _tiny_loop(tmp_path, loss)
    message = (r"train: the loss is nan at step 5 \(epoch 0, batch 5\): training diverged; lower --lr or check the "
               r"data \(the checkpoint of step 4 is kept\)")
    with pytest.raises(TrainingError, match=message):
        train.run()
    assert train.state.step == 4  # the bad step was not applied
    assert json.loads((tmp_path / "ckpt" / "loop_state.json").read_text())["step"] == 4


def test_a_checkpoint_holds_no_pickle_and_restores_every_generator(tmp_path):
    model, train = _tiny_loop(tmp_path, lambda step: paddle.to_tensor(1.0, stop_gradient=False))
    loop.seed_everything(5)
    train.save_checkpoint()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "loop_state.json", "model.safetensors", "optimizer.json", "optimizer.safetensors", "rng.json"]
    expected = (paddle.rand([3]).numpy().tolist(), np.random.rand(), random.random())
    paddle.rand([7]), np.random.rand(9), random.random()  # move every generator on
    train.load_checkpoint()
    assert (paddle.rand([3]).numpy().tolist(), np.random.rand(), random.random()) == expected


def test_an_old_pickled_checkpoint_resumes_only_when_trusted(tmp_path):
    from helpers import plant_payload
    from paddle_dynafast.errors import UntrustedFileError

    model, train = _tiny_loop(tmp_path, lambda step: paddle.to_tensor(1.0, stop_gradient=False))
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "loop_state.json").write_text(json.dumps({"step": 2}))
    plant_payload(tmp_path / "ckpt" / "model.pdparams", tmp_path / "ran")
    with pytest.raises(UntrustedFileError, match=r"ckpt/model.pdparams is a pickle"):
        train.run()
    assert not (tmp_path / "ran").exists()


def test_the_progress_bar_shows_the_loss_of_every_step(tmp_path, monkeypatch):
    """Not only every ``log_every`` steps: a short run (the demo's) would show its first loss throughout."""
    shown = []

    class Bar:
        def __init__(self, *args, **kwargs):
            pass

        def set_postfix(self, refresh=True, **values):
            shown.append(values["loss"])

        def update(self, n):
            pass

        def close(self):
            pass

    monkeypatch.setattr(loop, "tqdm", Bar)
    model = paddle.nn.Linear(2, 1)
    losses = iter([3.0, 2.0, 1.0, 0.5])

    class Loader(list):
        batch_sampler = type("S", (), {"set_epoch": lambda self, epoch: None})()

    train = loop.TrainLoop(model, TrainConfig(epochs=1, batch_size=4, log_every=50), Loader([{}] * 4), tmp_path / "c",
                           lambda batch: model(paddle.ones([1, 2])).mean() * 0 + next(losses), lambda: {"score": 0.0},
                           lambda metrics: None)
    train.run()
    assert shown == ["3.0000", "2.0000", "1.0000", "0.5000"]
