"""One skeleton for every training stage: begin or resume, train, finish, report.

A stage is a :class:`Stage` subclass in a module of its own that holds only its
objective: what it reads and writes into ``stage.json`` (:meth:`Stage.prepare`),
what it trains (:meth:`Stage.build`), the loss of one batch, the dev evaluation,
what to save when the dev score improves, and the final report. :meth:`Stage.run`
does the rest the same way for every stage:

1. the output directory is claimed (:func:`paddle_dynafast.outputs.claim`):
   never one of the stage's inputs, never a directory the stage did not write
   (no ``stage.json`` of this stage), one run at a time, leftovers of a killed
   run removed;
2. ``restart`` removes the stage's own files (:attr:`Stage.own_files`, nothing
   else), and so does finding a partial directory (started, no checkpoint:
   nothing trained to keep); a stage already complete with this configuration
   is returned as it is; a directory started with another configuration is
   refused; the seeds are set;
3. ``stage.json`` is written (``complete: false``) and the
   :class:`~paddle_dynafast.train.loop.TrainLoop` runs, resuming from the
   checkpoint if there is one; a run that fails before its first checkpoint
   removes what it wrote;
4. rank 0 writes ``metrics.json`` (history, steps, seconds and the stage's own
   report), marks ``stage.json`` complete and drops the checkpoint.

Adding a stage is one module and one entry in
:data:`paddle_dynafast.train.STAGES`; the pipeline and the command line take
their stages from there. A stage also says how the command line builds its
configuration (:meth:`Stage.add_arguments`, :meth:`Stage.config_from_args`) and
how the pipeline does (:meth:`Stage.config_from_pipeline`).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import logging
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, ContextManager, Dict, List, Optional, Sequence, Tuple

import paddle

from .. import atomic, data, distributed, outputs
from ..config import DataConfig, PipelineConfig, TrainConfig, to_dict
from ..errors import ArtifactError, DataError
from ..model.stage_info import METRICS_FILE, STAGE_FILE, StageInfo, normalize_config, versions
from ..model.weights import PICKLE_WEIGHTS, SAFE_WEIGHTS
from .loop import LoopState, TrainLoop, seed_everything

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"


@dataclass
class StageResult:
    """What a stage returns: its directory and the contents of its ``metrics.json``."""

    output_dir: Path
    metrics: Dict[str, Any]


@dataclass
class TrainSetup:
    """What :meth:`Stage.build` hands to the loop."""

    model: paddle.nn.Layer
    """The layer whose state the checkpoint holds (and whose parameters are trained unless ``parameters``)."""
    train_loader: paddle.io.DataLoader
    parameters: Optional[Sequence[paddle.Tensor]] = None
    context: ContextManager = field(default_factory=contextlib.nullcontext)
    """Entered around the whole loop (the supernet's head-mask forward)."""


class Stage(ABC):
    """A training stage; subclasses fill in the objective (see the module docstring)."""

    name: ClassVar[str]
    """Written as ``stage`` in ``stage.json``; the sub-command's name."""
    run_dir: ClassVar[str]
    """The stage's subdirectory in a pipeline run."""
    config_class: ClassVar[type]
    help: ClassVar[str]
    """One line for ``paddle-dynafast --help``."""
    description: ClassVar[str]
    example: ClassVar[str]
    """A runnable command, shown by ``--help``."""
    own_files: ClassVar[Tuple[str, ...]] = (
        STAGE_FILE, METRICS_FILE, CHECKPOINT_DIR, SAFE_WEIGHTS, PICKLE_WEIGHTS, "config.json", "vocab.txt",
        "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.json")
    """What the stage writes into its directory (``fnmatch`` patterns): all that ``--restart`` removes."""

    def __init__(self, config, logdir: Optional[str] = None, trust_pickle: bool = False):
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.logdir = logdir
        self.trust_pickle = trust_pickle
        """Read pickled weights and checkpoints (``.pdparams``) of the inputs and of an older run."""

    # -- the objective: what a stage fills in

    @abstractmethod
    def prepare(self) -> Dict[str, Any]:
        """Read the inputs; return the ``stage.json`` entries of this stage (labels, example counts, ...)."""

    @abstractmethod
    def build(self) -> TrainSetup:
        """What to train (called after ``stage.json`` is written)."""

    @abstractmethod
    def loss(self, batch: Dict[str, paddle.Tensor]) -> paddle.Tensor:
        """The loss of one batch; a stage that runs its backward passes itself returns a tensor without gradient."""

    @abstractmethod
    def evaluate(self) -> Dict[str, Any]:
        """Dev metrics after an epoch, every rank; the ``score`` entry picks the best."""

    @abstractmethod
    def save_best(self, directory: Path) -> None:
        """Write the model files into ``directory`` (rank 0), published into the stage directory atomically."""

    @abstractmethod
    def report(self, state: LoopState) -> Dict[str, Any]:
        """The final metrics of this stage (rank 0), besides history, steps and seconds."""

    # -- how the command line and the pipeline build the configuration

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The stage's own flags (the common data and training flags are added by the command line)."""

    @classmethod
    @abstractmethod
    def config_from_args(cls, args: argparse.Namespace, data: DataConfig, train: TrainConfig):
        """The configuration of a ``paddle-dynafast NAME`` command."""

    @classmethod
    @abstractmethod
    def config_from_pipeline(cls, pipeline: PipelineConfig, model_dir: Optional[str], output_dir: str):
        """The configuration of this stage in a pipeline run; ``model_dir`` is the previous stage's directory
        (the pipeline's ``model_dir`` for the first stage)."""

    @classmethod
    def summary(cls, result: StageResult) -> str:
        """What the command prints when the stage is done."""
        return f"-> {result.output_dir}"

    # -- the skeleton

    def inputs(self) -> List[str]:
        """The files and directories the stage reads (its config's ``*_dir`` and ``*_file`` fields and the data
        folder): the output may not be, or hold, one of them."""
        config = self.config
        named = [getattr(config, f.name) for f in dataclasses.fields(config)
                 if f.name.endswith(("_dir", "_file")) and f.name != "output_dir"]
        return [p for p in named + [config.data.data_dir] if p is not None]

    def run(self, restart: bool = False) -> StageResult:
        """Begin or resume, train, finish; a stage already complete with this configuration is returned as it is.
        ``restart`` removes the stage's own files from its directory first (see the module docstring)."""
        distributed.setup()
        existed = self.output_dir.exists()
        with outputs.claim(self.output_dir, outputs.stage_output(self.name), self.inputs(), replace=restart,
                           lock=distributed.is_main()) as earlier:
            done = self._begin(restart, earlier)
            if done is not None:
                return done
            try:
                return self._train()
            except BaseException:
                if distributed.is_main() and not (self.output_dir / CHECKPOINT_DIR).is_dir():
                    self._remove_own_files("the run stopped before its first checkpoint")
                    if not existed and self.output_dir.is_dir() and not any(self.output_dir.iterdir()):
                        self.output_dir.rmdir()
                raise

    def _train(self) -> StageResult:
        info = {"stage": self.name, "complete": False, "config": to_dict(self.config), "versions": versions()}
        if distributed.is_main():  # ours from the start, so that a run killed in prepare is recognised
            atomic.write_json(self.output_dir / STAGE_FILE, info)
        info = {**info, **self.prepare()}
        if distributed.is_main():
            atomic.write_json(self.output_dir / STAGE_FILE, info)
        setup = self.build()

        def on_best(metrics):
            with atomic.publish_files(self.output_dir) as tmp:
                self.save_best(tmp)

        loop = TrainLoop(setup.model, self.config.train, setup.train_loader, self.output_dir / CHECKPOINT_DIR,
                         self.loss, self.evaluate, on_best, parameters=setup.parameters, logdir=self.logdir,
                         name=self.name, trust_pickle=self.trust_pickle)
        with setup.context:
            state = loop.run()
        metrics: Dict[str, Any] = {}
        if distributed.is_main():
            metrics = {"history": state.history, "train_steps": state.step,
                       "train_seconds": round(state.train_seconds, 1), **self.report(state)}
            atomic.write_json(self.output_dir / METRICS_FILE, metrics)
            atomic.write_json(self.output_dir / STAGE_FILE, {**info, "complete": True})
            shutil.rmtree(self.output_dir / CHECKPOINT_DIR, ignore_errors=True)
        distributed.barrier()
        if not distributed.is_main() and (self.output_dir / METRICS_FILE).is_file():  # on a shared disk
            metrics = atomic.read_json(self.output_dir / METRICS_FILE)
        return StageResult(self.output_dir, metrics)

    def _begin(self, restart: bool, earlier: bool) -> Optional[StageResult]:
        distributed.barrier()  # every rank has checked the directory before rank 0 changes it
        if earlier and distributed.is_main():
            info = StageInfo.read(self.output_dir)
            if restart:
                self._remove_own_files("--restart")
            elif not info.complete and not (self.output_dir / CHECKPOINT_DIR).is_dir():
                self._remove_own_files("a partial directory: an earlier run stopped before its first checkpoint")
        distributed.barrier()
        info = StageInfo.read(self.output_dir)
        if info.is_complete_with(self.name, self.config):
            logger.info("%s is complete; nothing to do", self.output_dir)
            return StageResult(self.output_dir, atomic.read_json(self.output_dir / METRICS_FILE))
        check_resumable(info, self.name, self.config)
        seed_everything(self.config.train.seed)
        return None

    def _remove_own_files(self, why: str) -> None:
        """Remove :attr:`own_files` from the stage directory, and nothing else (the rest is listed as kept)."""
        if not self.output_dir.is_dir():
            return
        mine = [p for p in sorted(self.output_dir.iterdir()) if any(fnmatch.fnmatch(p.name, g) for g in self.own_files)]
        if not mine:
            return
        for path in mine:
            atomic.remove(path)
        kept = sorted(p.name for p in self.output_dir.iterdir())
        logger.warning("%s: removed the %s files of %s (%s)%s", self.output_dir, len(mine), self.name, why,
                       f"; kept {kept}, which {self.name} did not write" if kept else "")


def check_resumable(info: StageInfo, stage: str, config,
                    may_differ: Sequence[str] = ("output_dir", "train.max_steps", "train.log_every")) -> None:
    """Refuse to continue a run in ``info.directory`` that was started with another configuration."""
    if info.stage is None:
        return
    if info.stage != stage:
        raise ArtifactError(f"{info.directory} holds stage {info.stage!r}, not {stage!r}; choose another --output")
    old, new = _flatten(normalize_config(info.config, type(config))), _flatten(to_dict(config))
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in may_differ)
    if differ:
        raise ArtifactError(f"{info.directory} was started with another configuration ({', '.join(differ)} differ); "
                            "pass --restart to start it over, or choose another --output")


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def teacher_labels(teacher_dir: str | Path, train_examples: Sequence[data.Example], num_labels: int,
                   explicit: Optional[Sequence[str]] = None) -> List[str]:
    """The labels a teacher was trained on (its ``stage.json``, else ``explicit``, else the training split's),
    checked against its head (and against ``explicit``, the ``--labels`` of the command, when both are given)."""
    info = StageInfo.read(teacher_dir)
    if info.labels is not None and explicit is not None and list(explicit) != list(info.labels):
        raise DataError(f"labels {list(explicit)} differ from the labels {list(info.labels)} {teacher_dir} was "
                        "trained with")
    labels = list(info.labels) if info.labels is not None else data.training_labels(train_examples, explicit)
    if len(labels) != num_labels:
        raise ArtifactError(f"{teacher_dir} classifies {num_labels} labels, but its labels are {labels}")
    unknown = sorted(set(data.label_list(train_examples)) - set(labels))
    if unknown:
        raise DataError(f"training labels {unknown} are not among the teacher's labels {labels}")
    return labels


def backward_per_width(objective: paddle.nn.Layer, widths: Sequence[float], *inputs) -> paddle.Tensor:
    """``objective(*inputs, width)`` forward and backward once per width (largest first); the summed loss, without
    gradient. One backward per width, as PaddleNLP's DynaBERT does: ``paddle.DataParallel``'s gradient reducer is
    only right when every parameter is used once between two backward passes."""
    total = 0.0
    for width in widths:
        loss = objective(*inputs, width)
        loss.backward()
        total += float(loss)
    return paddle.to_tensor(total)
