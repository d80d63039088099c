"""The training loop, its checkpoints, resume and progress, shared by every stage.

:class:`TrainLoop` owns what every stage does the same way: AdamW with linear
warm-up and decay, gradient clipping, length-grouped batches in a seeded order,
a tqdm progress bar, optional VisualDL scalars, an evaluation at the end of each
epoch, and a resumable checkpoint (model, optimizer, scheduler, RNG state and
position in the epoch) written atomically at every epoch end, every
``save_every`` steps and on Ctrl-C. A stage (:mod:`paddle_dynafast.train.stage`)
supplies the loss of one batch and the evaluation. A loss that is not finite
stops training at that step, before the optimizer applies it.

A checkpoint holds no pickle: tensors in safetensors files (``model``,
``optimizer``), everything else in JSON (the scheduler, the RNG states of
Paddle, NumPy and Python, ``loop_state``). Checkpoints of earlier versions
(``model.pdparams``, ``optimizer.pdopt``, ``rng.pkl``: pickles) resume only
with ``trust_pickle``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import pickle
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import paddle
from tqdm.auto import tqdm

from .. import atomic, distributed
from ..config import TrainConfig
from ..errors import CheckpointError, TrainingError
from ..model.loading import assign_weights
from ..model.weights import check_trusted, load_pickle, read_weights, save_weights

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Paddle, NumPy and Python's ``random``."""
    paddle.seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> Dict[str, Any]:
    """The states of Paddle's, NumPy's and Python's generators, as JSON."""
    paddle_states = []
    for generator in paddle.get_rng_state():
        device, seed, offset, codes = generator.__getstate__()
        paddle_states.append({"device": device, "seed": seed, "offset": offset, "state": bytes(codes).decode("ascii")})
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"paddle": paddle_states,
            "numpy": {"kind": kind, "keys": keys.tolist(), "pos": pos, "has_gauss": has_gauss, "cached": cached},
            "python": {"version": version, "state": list(internal), "gauss": gauss}}


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (or the pickled states of an earlier version)."""
    if state["paddle"] and not isinstance(state["paddle"][0], dict):  # pickled by an earlier version
        paddle.set_rng_state(state["paddle"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
        return
    state_class = type(paddle.get_rng_state()[0])  # Paddle's GeneratorState, restored as pickle would
    generators = []
    for saved in state["paddle"]:
        generator = state_class.__new__(state_class)
        generator.__setstate__((saved["device"], saved["seed"], saved["offset"], list(saved["state"].encode("ascii"))))
        generators.append(generator)
    paddle.set_rng_state(generators)
    numpy, python = state["numpy"], state["python"]
    np.random.set_state((numpy["kind"], np.array(numpy["keys"], dtype="uint32"), numpy["pos"], numpy["has_gauss"],
                         numpy["cached"]))
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))


@dataclass
class LoopState:
    """Where a training run is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: Optional[float] = None
    history: List[Dict[str, Any]] = field(default_factory=list)
    """One entry per evaluation: epoch, step, metrics, seconds."""
    train_seconds: float = 0.0


class ScalarLog:
    """VisualDL scalars when ``logdir`` is given, nothing otherwise."""

    def __init__(self, logdir: Optional[str]):
        self.writer = None
        if logdir:
            from visualdl import LogWriter  # optional at import time: only --logdir needs it

            self.writer = LogWriter(logdir=str(logdir))

    def add(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class TrainLoop:
    """Optimise ``model`` over ``loader`` with a resumable checkpoint in ``checkpoint_dir``.

    ``loss_fn(batch) -> Tensor`` gives the loss of one batch (run it through
    :func:`paddle_dynafast.distributed.data_parallel` for several processes); a
    ``loss_fn`` that has called ``backward`` itself (once per width, say)
    returns a tensor without gradient, and the loop only steps.
    ``evaluate_fn() -> dict`` is called on every rank after every epoch (and at
    ``max_steps``) with the model in eval mode; its ``"score"`` entry picks the
    best, and ``on_best(metrics)`` is called on rank 0 whenever the score
    improves (to save the best model). Rank 0 alone writes checkpoints and logs.
    ``trust_pickle`` resumes a checkpoint of an earlier version (pickles).
    """

    def __init__(self, model: paddle.nn.Layer, config: TrainConfig, loader: paddle.io.DataLoader,
                 checkpoint_dir: str | Path, loss_fn: Callable[[Dict[str, paddle.Tensor]], paddle.Tensor],
                 evaluate_fn: Callable[[], Dict[str, Any]], on_best: Callable[[Dict[str, Any]], None],
                 parameters: Optional[Sequence[paddle.Tensor]] = None, logdir: Optional[str] = None,
                 save_every: int = 200, name: str = "train", trust_pickle: bool = False):
        self.model, self.config, self.loader = model, config, loader
        self.trust_pickle = trust_pickle
        self.checkpoint_dir = Path(checkpoint_dir)
        self.loss_fn, self.evaluate_fn, self.on_best = loss_fn, evaluate_fn, on_best
        self.save_every, self.name = save_every, name
        self.log = ScalarLog(logdir if distributed.is_main() else None)
        steps_per_epoch = len(loader)
        if steps_per_epoch == 0:
            raise ValueError("the training split gives no batches")
        self.total_steps = steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        parameters = list(parameters) if parameters is not None else model.parameters()
        self.scheduler = _linear_schedule(config.lr, self.total_steps, int(config.warmup_ratio * self.total_steps))
        decay = {p.name for p in parameters if p.ndim > 1}  # no decay for biases and LayerNorm weights
        self.optimizer = paddle.optimizer.AdamW(
            learning_rate=self.scheduler, parameters=parameters, weight_decay=config.weight_decay,
            apply_decay_param_fun=lambda name: name in decay,
            grad_clip=paddle.nn.ClipGradByGlobalNorm(config.max_grad_norm))
        self.state = LoopState()

    # -- checkpoints

    def has_checkpoint(self) -> bool:
        return (self.checkpoint_dir / "loop_state.json").is_file()

    def save_checkpoint(self) -> None:
        """Rank 0 writes; every rank waits until it has."""
        if not distributed.is_main():
            distributed.barrier()
            return
        self._write_checkpoint()
        distributed.barrier()

    def _write_checkpoint(self) -> None:
        with atomic.atomic_dir(self.checkpoint_dir) as tmp:
            save_weights(tmp / "model.safetensors", self.model.state_dict())
            optimizer = self._optimizer_state(to_structured=True)
            save_weights(tmp / "optimizer.safetensors",
                         {k: v for k, v in optimizer.items() if isinstance(v, paddle.Tensor)})
            atomic.write_json(tmp / "optimizer.json",
                                 {k: v for k, v in optimizer.items() if not isinstance(v, paddle.Tensor)})
            atomic.write_json(tmp / "rng.json", rng_state())
            atomic.write_json(tmp / "loop_state.json", asdict(self.state))

    def load_checkpoint(self) -> None:
        directory = self.checkpoint_dir
        state = atomic.read_json(directory / "loop_state.json")
        self.state = LoopState(**state)
        if (directory / "model.safetensors").is_file():
            weights = read_weights(directory / "model.safetensors")
            optimizer: Dict[str, Any] = {k: paddle.to_tensor(v)
                                         for k, v in read_weights(directory / "optimizer.safetensors").items()}
            optimizer.update(atomic.read_json(directory / "optimizer.json"))
            rng = atomic.read_json(directory / "rng.json")
        elif (directory / "model.pdparams").is_file():  # written by an earlier version: pickles
            weights = read_weights(directory / "model.pdparams", self.trust_pickle)
            optimizer = load_pickle(directory / "optimizer.pdopt", self.trust_pickle)
            check_trusted(directory / "rng.pkl", self.trust_pickle)
            with open(directory / "rng.pkl", "rb") as f:
                rng = pickle.load(f)
        else:
            raise CheckpointError(f"{directory} has loop_state.json but no model.safetensors")
        assign_weights(self.model, weights)
        self.optimizer.set_state_dict(self._optimizer_state(optimizer, to_structured=False))
        set_rng_state(rng)
        logger.info("resumed %s from %s at step %d (epoch %d, batch %d)", self.name, directory,
                    self.state.step, self.state.epoch, self.state.batch_in_epoch)

    def _optimizer_state(self, state: Optional[Dict[str, Any]] = None, to_structured: bool = True) -> Dict[str, Any]:
        """The optimizer state keyed by structured parameter names (``bert.pooler.dense.weight_moment1_0``).

        Paddle keys it by internal names (``linear_7.w_0_moment1_0``) that depend on
        how many layers the process had built before; a resumed process differs.
        """
        names = {p.name: name for name, p in self.model.named_parameters()}
        if not to_structured:
            names = {v: k for k, v in names.items()}
        state = self.optimizer.state_dict() if state is None else state
        by_length = sorted(names, key=len, reverse=True)
        out = {}
        for key, value in state.items():
            prefix = next((n for n in by_length if key == n or key.startswith(n + "_")), None)
            out[key if prefix is None else names[prefix] + key[len(prefix):]] = value
        return out

    # -- the loop

    def run(self) -> LoopState:
        """Train to the end (or ``max_steps``), resuming from the checkpoint if there is one.

        Ctrl-C stops after the current step and saves a checkpoint first (a second
        Ctrl-C stops at once); the run then resumes where it stopped.
        """
        if self.has_checkpoint():
            self.load_checkpoint()
        state = self.state
        bar = tqdm(total=self.total_steps, initial=state.step, desc=self.name, unit="step", dynamic_ncols=True,
                   disable=not distributed.is_main())
        with _stop_request() as stop:
            try:
                while state.step < self.total_steps:
                    self._run_epoch(bar, stop)
                    epoch_done = state.batch_in_epoch >= len(self.loader)
                    self._evaluate()
                    if epoch_done:
                        state.epoch += 1
                        state.batch_in_epoch = 0
                    self.save_checkpoint()
            finally:
                bar.close()
                self.log.close()
        return state

    def _run_epoch(self, bar, stop) -> None:
        """Train the rest of the current epoch, or up to ``total_steps``."""
        state = self.state
        self.loader.batch_sampler.set_epoch(state.epoch)
        started = time.perf_counter()
        for index, batch in enumerate(self.loader):
            if index < state.batch_in_epoch:
                continue  # trained before the interruption
            self.model.train()
            loss = self.loss_fn(batch)
            value = float(loss)
            if not math.isfinite(value):  # before the step: the weights and the checkpoint stay as they were
                raise TrainingError(f"{self.name}: the loss is {value} at step {state.step + 1} (epoch {state.epoch}, "
                                    f"batch {index + 1}): training diverged; lower --lr or check the data"
                                    + (f" (the checkpoint of step {state.step} is kept)" if self.has_checkpoint()
                                       else ""))
            if not loss.stop_gradient:  # a loss_fn may have run its backward passes itself
                loss.backward()
            self.optimizer.step()
            self.optimizer.clear_grad()
            self.scheduler.step()
            state.step += 1
            state.batch_in_epoch = index + 1
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{self.scheduler.get_lr():.2e}", refresh=False)
            bar.update(1)  # redraws (postfix included) at most every mininterval
            if state.step % self.config.log_every == 0 or state.step == 1:
                self.log.add(f"{self.name}/loss", value, state.step)
                self.log.add(f"{self.name}/lr", self.scheduler.get_lr(), state.step)
            if state.step >= self.total_steps:
                break
            if stop.requested or state.step % self.save_every == 0:
                state.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                self.save_checkpoint()
                if stop.requested:
                    raise KeyboardInterrupt(f"stopped at step {state.step}; checkpoint saved in {self.checkpoint_dir}")
        state.train_seconds += time.perf_counter() - started

    def _evaluate(self) -> None:
        state = self.state
        self.model.eval()
        metrics = self.evaluate_fn()
        entry = {"epoch": state.epoch, "step": state.step, "train_seconds": round(state.train_seconds, 1), **metrics}
        state.history.append(entry)
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                self.log.add(f"{self.name}/dev_{key}", value, state.step)
        logger.info("%s epoch %d step %d: %s", self.name, state.epoch, state.step,
                    ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
        if state.best_score is None or metrics["score"] > state.best_score:
            state.best_score = metrics["score"]
            if distributed.is_main():
                self.on_best(metrics)


class _StopFlag:
    requested = False


@contextlib.contextmanager
def _stop_request() -> Iterator[_StopFlag]:
    """While active, the first Ctrl-C only sets ``requested``; the handler is restored afterwards."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True
        logger.warning("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again stops at once)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _linear_schedule(lr: float, total_steps: int, warmup_steps: int) -> paddle.optimizer.lr.LambdaDecay:
    """Linear warm-up from 0 to ``lr`` over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return paddle.optimizer.lr.LambdaDecay(learning_rate=lr, lr_lambda=factor)
