"""Training loops, checkpoints, resume and progress, shared by the stages.

:class:`TrainLoop` owns what every stage does the same way: AdamW with linear
warm-up and decay, gradient clipping, length-grouped batches in a seeded order,
a tqdm progress bar, optional VisualDL scalars, an evaluation at the end of each
epoch, and a resumable checkpoint (model, optimizer, scheduler, RNG state and
position in the epoch) written atomically at every epoch end, every
``save_every`` steps and on Ctrl-C. A stage supplies the loss of one batch and
the evaluation; :func:`finetune` is stage 1.
"""
from __future__ import annotations

import contextlib
import logging
import pickle
import random
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import paddle
import paddle.nn.functional as F
from tqdm.auto import tqdm

from . import artifacts, backbone, data, distributed
from .config import FinetuneConfig, TrainConfig, from_dict, to_dict

logger = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoint"


def seed_everything(seed: int) -> None:
    """Seed Paddle, NumPy and Python's ``random``."""
    paddle.seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def versions() -> Dict[str, str]:
    """Versions of the libraries that shape the artifacts."""
    from importlib.metadata import version

    from . import __version__

    return {**{name: version(name) for name in ("paddlepaddle", "paddlenlp", "paddleslim")}, "paddle_dynafast": __version__}


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
            from visualdl import LogWriter

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
    """

    def __init__(self, model: paddle.nn.Layer, config: TrainConfig, loader: paddle.io.DataLoader,
                 checkpoint_dir: str | Path, loss_fn: Callable[[Dict[str, paddle.Tensor]], paddle.Tensor],
                 evaluate_fn: Callable[[], Dict[str, Any]], on_best: Callable[[Dict[str, Any]], None],
                 parameters: Optional[Sequence[paddle.Tensor]] = None, logdir: Optional[str] = None,
                 save_every: int = 200, name: str = "train"):
        self.model, self.config, self.loader = model, config, loader
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
        with artifacts.atomic_dir(self.checkpoint_dir) as tmp:
            paddle.save(self.model.state_dict(), str(tmp / "model.pdparams"))
            paddle.save(self._optimizer_state(to_structured=True), str(tmp / "optimizer.pdopt"))
            with open(tmp / "rng.pkl", "wb") as f:
                pickle.dump({"paddle": paddle.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}, f)
            artifacts.write_json(tmp / "loop_state.json", asdict(self.state))

    def load_checkpoint(self) -> None:
        state = artifacts.read_json(self.checkpoint_dir / "loop_state.json")
        self.state = LoopState(**state)
        weights = paddle.load(str(self.checkpoint_dir / "model.pdparams"))
        backbone.assign_weights(self.model, {k: v.numpy() for k, v in weights.items()})
        self.optimizer.set_state_dict(
            self._optimizer_state(paddle.load(str(self.checkpoint_dir / "optimizer.pdopt")), to_structured=False))
        with open(self.checkpoint_dir / "rng.pkl", "rb") as f:
            rng = pickle.load(f)
        paddle.set_rng_state(rng["paddle"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        logger.info("resumed %s from %s at step %d (epoch %d, batch %d)", self.name, self.checkpoint_dir,
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
            if not loss.stop_gradient:  # a loss_fn may have run its backward passes itself
                loss.backward()
            self.optimizer.step()
            self.optimizer.clear_grad()
            self.scheduler.step()
            state.step += 1
            state.batch_in_epoch = index + 1
            bar.update(1)
            if state.step % self.config.log_every == 0 or state.step == 1:
                value = float(loss)
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{self.scheduler.get_lr():.2e}")
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


# ----------------------------------------------------------------------------- evaluation


@paddle.no_grad()
def predict(forward: Callable[[Dict[str, paddle.Tensor]], paddle.Tensor], loader: paddle.io.DataLoader) -> np.ndarray:
    """``forward(batch)`` over ``loader``, rows put back in dataset order: ``[examples, ...]``.

    With a loader sharded among data-parallel ranks, every rank gets every row.
    """
    rows, order = [], []
    for batch in loader:
        rows.append(forward(batch).numpy())
        order.append(batch["index"].numpy())
    parts = [(rows, order)]
    if loader.batch_sampler.nranks > 1:
        parts = distributed.gather((rows, order))
    rows = [r for part_rows, _ in parts for r in part_rows]
    order = [o for _, part_order in parts for o in part_order]
    values = np.concatenate(rows)
    out = np.empty_like(values)
    out[np.concatenate(order)] = values
    return out


def predict_logits(model: paddle.nn.Layer, loader: paddle.io.DataLoader) -> np.ndarray:
    """Logits ``[examples, num_labels]`` of a classifier over ``loader``, in dataset order."""
    model.eval()
    return predict(lambda batch: model(batch["input_ids"], token_type_ids=batch["token_type_ids"]), loader)


def accuracy(logits: np.ndarray, labels: Sequence[int]) -> float:
    return float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())


# ----------------------------------------------------------------------------- stage 1


@dataclass
class StageResult:
    """What a stage returns: its directory and the contents of its ``metrics.json``."""

    output_dir: Path
    metrics: Dict[str, Any]


def teacher_labels(teacher_dir: str | Path, train_examples: Sequence[data.Example], num_labels: int) -> List[str]:
    """The labels a teacher was trained on (its ``stage.json``, else the training split's), checked against its head."""
    stage = Path(teacher_dir) / STAGE_FILE
    labels = artifacts.read_json(stage)["labels"] if stage.is_file() else data.label_list(train_examples)
    if len(labels) != num_labels:
        raise ValueError(f"{teacher_dir} classifies {num_labels} labels, but its labels are {labels}")
    unknown = sorted(set(data.label_list(train_examples)) - set(labels))
    if unknown:
        raise data.DataError(f"training labels {unknown} are not among the teacher's labels {labels}")
    return list(labels)


def stage_is_complete(output_dir: str | Path, stage: str, config_dict: Dict[str, Any]) -> bool:
    """True if ``output_dir`` holds a finished ``stage`` made with the same configuration (a moved directory
    still counts: ``output_dir`` itself is not compared)."""
    path = Path(output_dir) / STAGE_FILE
    if not path.is_file():
        return False
    info = artifacts.read_json(path)
    same = {k: v for k, v in info.get("config", {}).items() if k != "output_dir"} == \
        {k: v for k, v in config_dict.items() if k != "output_dir"}
    return info.get("stage") == stage and info.get("complete") is True and same


def check_resumable(output_dir: Path, stage: str, config_dict: Dict[str, Any],
                    may_differ: Sequence[str] = ("output_dir", "train.max_steps", "train.log_every")) -> None:
    """Refuse to continue a run in ``output_dir`` that was started with another configuration."""
    path = output_dir / STAGE_FILE
    if not path.is_file():
        return
    info = artifacts.read_json(path)
    if info.get("stage") != stage:
        raise ValueError(f"{output_dir} holds stage {info.get('stage')!r}, not {stage!r}; choose another --output")
    old, new = _flatten(info.get("config", {})), _flatten(config_dict)
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in may_differ)
    if differ:
        raise ValueError(f"{output_dir} was started with another configuration ({', '.join(differ)} differ); "
                         "choose another --output or remove it")


def begin_stage(stage: str, config: Any, restart: bool = False) -> Optional[StageResult]:
    """What every stage does first: ``restart`` clears ``config.output_dir``; a stage already complete with this
    configuration is returned as it is; a run started with another configuration is refused; then the seeds are set.
    Returns None when the stage has work to do."""
    distributed.setup()
    output_dir = Path(config.output_dir)
    config_dict = to_dict(config)
    if restart and output_dir.exists() and distributed.is_main():
        shutil.rmtree(output_dir)
    distributed.barrier()
    if stage_is_complete(output_dir, stage, config_dict):
        logger.info("%s is complete; nothing to do", output_dir)
        return StageResult(output_dir, artifacts.read_json(output_dir / METRICS_FILE))
    check_resumable(output_dir, stage, config_dict)
    seed_everything(config.train.seed)
    return None


def finish_stage(output_dir: Path, info: Dict[str, Any], metrics: Dict[str, Any]) -> StageResult:
    """What every stage does last (rank 0): write ``metrics.json``, mark ``stage.json`` complete, drop the
    checkpoint. Every rank waits for it."""
    if distributed.is_main():
        artifacts.write_json(output_dir / METRICS_FILE, metrics)
        artifacts.write_json(output_dir / STAGE_FILE, {**info, "complete": True})
        shutil.rmtree(output_dir / CHECKPOINT_DIR, ignore_errors=True)
    distributed.barrier()
    if not distributed.is_main() and (output_dir / METRICS_FILE).is_file():  # other ranks, on a shared disk
        metrics = artifacts.read_json(output_dir / METRICS_FILE)
    return StageResult(output_dir, metrics)


def write_stage_info(output_dir: Path, info: Dict[str, Any]) -> None:
    """``stage.json`` of a stage under way (rank 0 writes)."""
    if distributed.is_main():
        artifacts.write_json(output_dir / STAGE_FILE, info)


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _build_teacher_inputs(config: FinetuneConfig, splits: Dict[str, List[data.Example]]):
    """Model and tokenizer for stage 1: pretrained, pretrained architecture with random weights, or a char vocab."""
    labels = data.label_list(splits["train"])
    if config.model_dir is not None:
        loaded = backbone.load_classifier(config.model_dir, num_labels=len(labels), random_init=config.random_init)
        return loaded.model, loaded.tokenizer, labels
    from paddlenlp.transformers import BertConfig, BertTokenizer

    vocab = data.build_char_vocab((e.text_a + " " + (e.text_b or "") for e in splits["train"]), config.min_char_count)
    vocab_file = Path(config.output_dir) / "vocab.txt"  # the stage's own; save_pretrained copies it from here
    if distributed.is_main():
        vocab_file.parent.mkdir(parents=True, exist_ok=True)
        vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    distributed.barrier()
    tokenizer = BertTokenizer(vocab_file=str(vocab_file), do_lower_case=True)
    size = config.size
    bert_config = BertConfig(vocab_size=len(vocab), hidden_size=size.hidden_size, num_hidden_layers=size.num_layers,
                             num_attention_heads=size.num_heads, intermediate_size=size.intermediate_size,
                             max_position_embeddings=size.max_position_embeddings, type_vocab_size=2,
                             layer_norm_eps=1e-12, num_labels=len(labels))
    logger.info("character vocabulary of %d tokens from %d training examples", len(vocab), len(splits["train"]))
    return backbone.build_classifier(bert_config), tokenizer, labels


def finetune(config: FinetuneConfig, logdir: Optional[str] = None, restart: bool = False) -> StageResult:
    """Stage 1: fine-tune a BERT classifier; the best dev checkpoint is the stage's model.

    Writes to ``config.output_dir``: the model and tokenizer (PaddleNLP
    ``save_pretrained``), ``stage.json`` (this configuration, labels, versions),
    ``metrics.json`` (dev accuracy per epoch, test accuracy of the best model)
    and ``checkpoint/`` (removed when the stage completes). An interrupted run
    resumes from its checkpoint; a complete one is left as it is.
    """
    done = begin_stage("finetune", config, restart)
    if done is not None:
        return done
    output_dir = Path(config.output_dir)
    splits = data.load_splits(config.data.data_dir, config.data.max_examples, config.data.dev_fraction,
                              seed=config.train.seed)
    model, tokenizer, labels = _build_teacher_inputs(config, splits)
    features = {split: data.encode(examples, tokenizer, config.data.max_seq_len, labels)
                for split, examples in splits.items()}
    pad = tokenizer.pad_token_id
    train_loader = data.make_loader(features["train"], pad, config.train.batch_size, shuffle=True, seed=config.train.seed)
    dev_loader = data.make_loader(features["dev"], pad, config.train.eval_batch_size, shuffle=False)
    dev_labels = [f.label for f in features["dev"]]
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}

    info = {"stage": "finetune", "complete": False, "config": to_dict(config), "labels": labels,
            "num_examples": {split: len(f) for split, f in features.items()},
            "truncated": {split: sum(x.truncated for x in f) for split, f in features.items()},
            "versions": versions()}
    write_stage_info(output_dir, info)
    parallel = distributed.data_parallel(model)

    def loss_fn(batch):
        logits = parallel(batch["input_ids"], token_type_ids=batch["token_type_ids"])  # [batch, num_labels]
        return F.cross_entropy(logits, batch["labels"])

    def evaluate_fn():
        acc = accuracy(predict_logits(model, dev_loader), dev_labels)
        return {"score": acc, "dev_accuracy": acc}

    def on_best(metrics):
        with artifacts.publish_files(output_dir) as tmp:
            backbone.save_classifier(model, tokenizer, tmp)

    loop = TrainLoop(model, config.train, train_loader, output_dir / CHECKPOINT_DIR, loss_fn, evaluate_fn, on_best,
                     logdir=logdir, name="finetune")
    state = loop.run()
    if not distributed.is_main():
        return finish_stage(output_dir, info, {})

    best = backbone.load_classifier(output_dir)
    metrics: Dict[str, Any] = {
        "dev_accuracy": state.best_score,
        "history": state.history,
        "train_steps": state.step,
        "train_seconds": round(state.train_seconds, 1),
        "num_labels": len(labels),
    }
    if "test" in features:
        test_loader = data.make_loader(features["test"], pad, config.train.eval_batch_size, shuffle=False, shard=False)
        metrics["test_accuracy"] = accuracy(predict_logits(best.model, test_loader), [f.label for f in features["test"]])
    logger.info("finetune: dev accuracy %.4f%s -> %s", state.best_score,
                f", test accuracy {metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else "", output_dir)
    return finish_stage(output_dir, info, metrics)


def load_finetune_config(output_dir: str | Path) -> FinetuneConfig:
    """The configuration that produced a stage-1 directory."""
    return from_dict(FinetuneConfig, artifacts.read_json(Path(output_dir) / STAGE_FILE)["config"])
