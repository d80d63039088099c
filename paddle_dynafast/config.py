"""Typed, frozen configurations for every stage, and every default, once.

Each field has a one-line doc; ``__post_init__`` rejects bad values with a
:class:`~paddle_dynafast.errors.ConfigError` (a ``ValueError``) that names the
value. The command line and :class:`PipelineConfig` take their defaults from
these classes (:func:`default`). Configs are written next to the artifacts they
produced (``stage.json``) and read back with :func:`from_dict`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple, Type, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def default(cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``cls`` (a fresh one for fields with a factory)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise KeyError(f"{cls.__name__} has no field {name!r}")
    f = fields[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise KeyError(f"{cls.__name__}.{name} has no default")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def check_finite(config: Any) -> None:
    """Every float of the dataclass ``config`` (alone or in a tuple) is finite: NaN and infinity are refused with
    the field named, since they train to NaN weights or write invalid JSON instead of failing."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        several = isinstance(value, (tuple, list))
        for item in value if several else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{f.name} must be {'finite numbers' if several else 'a finite number'}, "
                                  f"got {item!r}")


MAX_SEED = 2 ** 32 - 1
"""The largest seed every generator takes (NumPy's is the narrowest: ``[0, 2**32 - 1]``)."""


def check_seed(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{name} must be a whole number in [0, {MAX_SEED}], got {value!r}")


def normalize_labels(labels) -> Optional[Tuple[str, ...]]:
    """An explicit label set as a tuple of distinct, non-empty strings without spaces (at least 2), or None."""
    if labels is None:
        return None
    if isinstance(labels, str):
        raise ConfigError(f"labels must be a list of label strings, got the string {labels!r}")
    labels = tuple(str(label) for label in labels)
    bad = [label for label in labels if not label or label != label.strip() or any(c.isspace() for c in label)]
    if bad:
        raise ConfigError(f"label {bad[0]!r} is empty or holds white space")
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ConfigError(f"labels {list(labels)} must be at least 2 distinct labels")
    return labels


@dataclass(frozen=True)
class DataConfig:
    """Where the examples come from and how they are cut."""

    data_dir: str
    """Folder with ``train``/``dev``/``test`` files (``.txt`` ``LABEL TEXT`` lines or ``.tsv``)."""
    max_seq_len: int = 128
    """Tokens per example including [CLS] and [SEP]; longer texts are truncated and counted."""
    max_examples: Optional[int] = None
    """Keep only the first N examples of each split (quick runs); None keeps all."""
    max_eval_examples: Optional[int] = None
    """Keep only the first N examples of dev and test (quick runs: evaluation is most of their time); None leaves
    them to ``max_examples``."""
    dev_fraction: float = 0.1
    """When the folder has no dev split, this share of train is held out as dev."""
    split_seed: int = 42
    """Seeds which training examples are held out as dev when the folder has no dev split."""
    labels: Optional[Tuple[str, ...]] = None
    """The label set in the classifier's order; None takes the training split's labels, refusing a label that is
    rare (a typo?) or not a whole number among whole numbers (``0.0`` among ``0``/``1``)."""

    def __post_init__(self) -> None:
        check_finite(self)
        check_seed("split_seed", self.split_seed)
        object.__setattr__(self, "labels", normalize_labels(self.labels))
        if self.max_seq_len < 3:
            raise ConfigError(f"max_seq_len {self.max_seq_len} is too short: [CLS] and [SEP] need 2 of them")
        if self.max_examples is not None and self.max_examples < 1:
            raise ConfigError(f"max_examples must be >= 1 or None, got {self.max_examples}")
        if self.max_eval_examples is not None and self.max_eval_examples < 1:
            raise ConfigError(f"max_eval_examples must be >= 1 or None, got {self.max_eval_examples}")
        if not 0 < self.dev_fraction < 1:
            raise ConfigError(f"dev_fraction {self.dev_fraction} is not in (0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the training stages."""

    epochs: int = 3
    """Passes over the training split."""
    batch_size: int = 32
    """Examples per optimizer step."""
    eval_batch_size: int = 64
    """Examples per forward pass when evaluating."""
    lr: float = 5e-5
    """Peak learning rate of AdamW (linear warm-up, then linear decay to 0)."""
    weight_decay: float = 0.01
    """AdamW weight decay, not applied to biases and LayerNorm weights."""
    warmup_ratio: float = 0.1
    """Share of the steps spent warming the learning rate up from 0."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm."""
    seed: int = 42
    """Seeds Paddle, NumPy and Python's random, and the shuffling of batches."""
    max_steps: Optional[int] = None
    """Stop after this many optimizer steps (quick runs); None trains all epochs."""
    log_every: int = 50
    """Steps between log lines / VisualDL scalars."""

    def __post_init__(self) -> None:
        check_finite(self)
        check_seed("seed", self.seed)
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        _positive("lr", self.lr)
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio {self.warmup_ratio} is not in [0, 1)")
        _positive("max_grad_norm", self.max_grad_norm)
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1 or None, got {self.max_steps}")


@dataclass(frozen=True)
class ModelSize:
    """Size of a randomly initialised BERT (used when there is no pretrained model)."""

    hidden_size: int = 384
    """Width of every hidden state."""
    num_layers: int = 6
    """Transformer layers."""
    num_heads: int = 12
    """Attention heads per layer; must divide hidden_size."""
    intermediate_size: int = 1536
    """FFN neurons per layer."""
    max_position_embeddings: int = 512
    """Longest sequence the position table can hold."""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")


@dataclass(frozen=True)
class FinetuneConfig:
    """Stage 1: fine-tune a BERT classifier (the teacher of the later stages)."""

    output_dir: str
    """Stage directory written by this stage."""
    data: DataConfig
    """Examples and their cutting."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation."""
    model_dir: Optional[str] = None
    """Pretrained model: a PaddleNLP directory or a Hugging Face BERT directory. None: random init."""
    random_init: bool = False
    """Keep model_dir's architecture and vocabulary but start from random weights (a baseline)."""
    size: ModelSize = field(default_factory=ModelSize)
    """Architecture when model_dir is None (then the vocabulary is built from characters of train)."""
    min_char_count: int = 1
    """With a character vocabulary, characters seen fewer times in train map to [UNK]."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.model_dir is None and not self.random_init:
            raise ConfigError("model_dir is None: pass a pretrained directory, or random_init=True for a character vocabulary")
        if self.min_char_count < 1:
            raise ConfigError(f"min_char_count must be >= 1, got {self.min_char_count}")


BRANCH_KINDS = ("attention", "mean", "cls")


@dataclass(frozen=True)
class BranchConfig:
    """Kind and size of every branch classifier."""

    kind: str = "attention"
    """``attention``: FastBERT's branch (narrowing, self-attention over every token, the [CLS] row); ``mean``: the
    mean hidden state over the tokens through a dense layer (tanh) and the logits; ``cls``: the same on the [CLS]
    state alone, as DeeBERT and PABEE branch."""
    cls_hidden_size: int = 128
    """Width the branch narrows the hidden states to."""
    cls_num_attention_heads: int = 2
    """Heads of the branch's self-attention; must divide cls_hidden_size."""
    dropout: float = 0.1
    """Dropout on the branch's attention probabilities while training."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.kind not in BRANCH_KINDS:
            raise ConfigError(f"branch kind {self.kind!r} is not one of {list(BRANCH_KINDS)}")
        if not isinstance(self.cls_hidden_size, int) or self.cls_hidden_size < 1:
            raise ConfigError(f"cls_hidden_size must be a whole number >= 1, got {self.cls_hidden_size!r}")
        if not isinstance(self.cls_num_attention_heads, int) or self.cls_num_attention_heads < 1:
            raise ConfigError(f"cls_num_attention_heads must be a whole number >= 1, got {self.cls_num_attention_heads!r}")
        if self.cls_hidden_size % self.cls_num_attention_heads:
            raise ConfigError(f"cls_hidden_size {self.cls_hidden_size} does not divide into "
                             f"{self.cls_num_attention_heads} heads")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout {self.dropout} is not in [0, 1)")


@dataclass(frozen=True)
class AugmentConfig:
    """More distillation data, as TinyBERT and DynaBERT make it: word substitution from the teacher's own
    word-embedding neighbours (:mod:`paddle_dynafast.train.augment`). Augmented copies carry no label."""

    copies: int = 0
    """Augmented copies of every training text, added to the originals; 0 turns augmentation off."""
    probability: float = 0.4
    """Chance that each replaceable word is replaced (TinyBERT's p_t)."""
    neighbours: int = 15
    """A replaced word becomes one of its this many nearest wordpieces by cosine (TinyBERT's K)."""

    def __post_init__(self) -> None:
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"augment copies must be a whole number >= 0, got {self.copies!r}")
        if not 0 < self.probability <= 1:
            raise ConfigError(f"augment probability {self.probability} is not in (0, 1]")
        if isinstance(self.neighbours, bool) or not isinstance(self.neighbours, int) or self.neighbours < 1:
            raise ConfigError(f"augment neighbours must be a whole number >= 1, got {self.neighbours!r}")


def normalize_widths(widths) -> Tuple[float, ...]:
    """Widths sorted largest first; each in (0, 1], no repeats, 1.0 (the teacher's width) included."""
    widths = tuple(sorted((float(w) for w in widths), reverse=True))
    for width in widths:
        if not 0 < width <= 1:
            raise ConfigError(f"width {width} is not in (0, 1]")
    if len(set(widths)) != len(widths):
        raise ConfigError(f"widths {list(widths)} repeat a value")
    if not widths or widths[0] != 1.0:
        raise ConfigError(f"widths {list(widths)} must include 1.0, the teacher's own width")
    return widths


@dataclass(frozen=True)
class SupernetConfig:
    """Stage 2: the DynaBERT width supernet, distilled from the stage-1 teacher."""

    output_dir: str
    """Stage directory written by this stage."""
    teacher_dir: str
    """The fine-tuned teacher (a stage-1 directory or any PaddleNLP BERT classifier directory)."""
    data: DataConfig
    """Examples and their cutting (the teacher's labels must cover them)."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=2e-5))
    """Optimisation (PaddleNLP's DynaBERT example uses 3 epochs at 2e-5)."""
    widths: Tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    """Share of heads and FFN neurons kept; trained every batch, largest first. Must include 1.0."""
    lambda_distill: float = 0.1
    """Weight of the hidden-state MSE (embeddings and every layer) against the teacher."""
    lambda_logit: float = 1.0
    """Weight of the soft cross-entropy against the teacher's logits."""
    importance_examples: int = 512
    """Training examples held out of supernet training to score heads and neurons."""
    unlabeled_file: Optional[str] = None
    """Raw text, one example a line, distilled from the teacher besides the training split (no labels needed)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Augmented copies of the training texts (off by default)."""

    def __post_init__(self) -> None:
        check_finite(self)
        object.__setattr__(self, "widths", normalize_widths(self.widths))
        for name in ("lambda_distill", "lambda_logit"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.importance_examples < 1:
            raise ConfigError(f"importance_examples must be >= 1, got {self.importance_examples}")


@dataclass(frozen=True)
class SelfDistillConfig:
    """Stage 3: FastBERT branches after every layer, distilled from each width's own final classifier (and, by
    default, the labels: ``objective``)."""

    output_dir: str
    """Stage directory written by this stage."""
    model_dir: str
    """A supernet directory (stage 2; every width it trained) or a fine-tuned classifier (width 1.0 only)."""
    data: DataConfig
    """Training texts (their labels are used by the objectives 'mix' and 'labels') and the dev split."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=5e-4))
    """Optimisation of the branches (the backbone and final classifier stay frozen)."""
    branch: BranchConfig = field(default_factory=BranchConfig)
    """Size of each branch."""
    widths: Optional[Tuple[float, ...]] = None
    """Widths to give branches; None: every width of the supernet."""
    shared_branches: bool = True
    """One set of branches for all widths (True) or one set per width (False). On SST-2 the shared set was as good
    or better at 53 of 76 (width, speed) points at equal FLOPs, with a quarter of the parameters (docs/results.md)."""
    objective: str = "mix"
    """'mix': mix_alpha x KL(branch || final classifier) + (1 - mix_alpha) x cross-entropy to the gold labels (on
    the labelled rows; unlabeled and augmented texts get the KL only); 'distill': the KL alone, no labels (FastBERT);
    'labels': the cross-entropy alone (the paper's ablation). On SST-2 'mix' was ahead of 'distill' at equal FLOPs
    at 62, 66 and 51 of 76 (width, speed) points at three seeds; on TREC-6 at 23, 36 and 64 (a tie), with cheaper
    points for calibrate at every seed (docs/results.md, "Accuracy levers")."""
    mix_alpha: float = 0.5
    """Weight of the KL term of 'mix'."""
    temperature: float = 1.0
    """Temperature of the KL term ('distill' and 'mix'), T^2 KL(softmax(b / T) || softmax(f / T)); FastBERT uses 1."""
    unlabeled_file: Optional[str] = None
    """Raw text, one example a line, used for distillation besides the training split."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Augmented copies of the training texts (off by default; not with 'labels')."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.widths is not None:
            object.__setattr__(self, "widths", normalize_widths(self.widths))
        if self.objective not in ("distill", "labels", "mix"):
            raise ConfigError(f"objective {self.objective!r} is not 'distill', 'labels' or 'mix'")
        if self.objective == "labels" and self.unlabeled_file is not None:
            raise ConfigError("objective 'labels' cannot use an unlabeled_file")
        if self.objective == "labels" and self.augment.copies:
            raise ConfigError("objective 'labels' cannot use augmented copies: they carry no label")
        if not 0 <= self.mix_alpha <= 1:
            raise ConfigError(f"mix_alpha {self.mix_alpha} is not in [0, 1]")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.objective == "labels" and self.temperature != 1.0:
            raise ConfigError(f"temperature {self.temperature} has no effect with objective 'labels' (no KL term)")


def normalize_speeds(speeds) -> Tuple[float, ...]:
    """Speeds sorted ascending, each in [0, 1], no repeats."""
    speeds = tuple(sorted(float(s) for s in speeds))
    for speed in speeds:
        if not 0 <= speed <= 1:
            raise ConfigError(f"speed {speed} is not in [0, 1]")
    if not speeds or len(set(speeds)) != len(speeds):
        raise ConfigError(f"speeds {list(speeds)} are empty or repeat a value")
    return speeds


def normalize_patience(patience) -> Tuple[int, ...]:
    """PABEE patiences sorted ascending, each a whole number >= 1, no repeats (may be empty)."""
    values = tuple(sorted(patience))
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"patience {value!r} is not a whole number >= 1")
    if len(set(values)) != len(values):
        raise ConfigError(f"patience {list(values)} repeats a value")
    return values


@dataclass(frozen=True)
class BootstrapConfig:
    """The paired bootstrap behind every accuracy interval and the calibration's confidence
    (:mod:`paddle_dynafast.analysis.stats`)."""

    samples: int = 10000
    """Resamples of the examples."""
    seed: int = 0
    """Seeds the resamples; every system compared on one split is scored on the same resamples."""
    level: float = 0.95
    """Coverage of the reported intervals (0.95: from the 2.5th to the 97.5th percentile)."""

    def __post_init__(self) -> None:
        if not isinstance(self.samples, int) or self.samples < 100:
            raise ConfigError(f"bootstrap samples must be a whole number >= 100, got {self.samples!r}")
        if not 0 < self.level < 1:
            raise ConfigError(f"bootstrap level {self.level} is not in (0, 1)")


@dataclass(frozen=True)
class EvaluateConfig:
    """The accuracy x FLOPs x exit-layer grid of a model with branches, on one split."""

    model_dir: str
    """A stage-3 (distill) directory."""
    output_dir: str
    """Where evaluation.json, evaluation.md and evaluation.png go."""
    data: DataConfig
    """The data folder; max_seq_len should be the one the model was trained with."""
    split: str = "test"
    """Which split to measure: train, dev or test."""
    widths: Optional[Tuple[float, ...]] = None
    """Widths to measure; None: every width the model has branches for."""
    speeds: Tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
    """Speeds to measure (the tables show 0, 0.1, 0.3, 0.5, 0.8 when present)."""
    patience: Tuple[int, ...] = (1, 2, 3, 4)
    """PABEE patiences measured beside the entropy grid (NumPy only) and compared with it at equal FLOPs;
    () skips them. Patience t exits at the first layer whose prediction equals the t layers' before it."""
    batch_size: int = 64
    """Examples per forward pass."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """The intervals of every accuracy difference against the full model."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.split not in ("train", "dev", "test"):
            raise ConfigError(f"split {self.split!r} is not train, dev or test")
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(sorted((float(w) for w in self.widths), reverse=True)))
        object.__setattr__(self, "speeds", normalize_speeds(self.speeds))
        object.__setattr__(self, "patience", normalize_patience(self.patience))
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


def check_confidence(confidence: Optional[float]) -> None:
    if confidence is not None and not 0.5 <= confidence < 1:
        raise ConfigError(f"confidence {confidence} is not in [0.5, 1) (or None for the raw dev drop)")


@dataclass(frozen=True)
class CalibrateConfig:
    """Choose (width, speed) operating points on dev for an accuracy budget, and the reverse."""

    model_dir: str
    """A stage-3 (distill) directory."""
    output_dir: str
    """Where calibration.json and calibration.md go."""
    data: DataConfig
    """The data folder (dev chooses, test reports)."""
    max_accuracy_drop: float = 0.5
    """Points of dev accuracy the adaptive model may lose against the full model (width 1.0, speed 0)."""
    min_flops_speedup: float = 3.0
    """The reverse budget: the best accuracy with at least this many times fewer FLOPs."""
    confidence: Optional[float] = 0.9
    """A point is within the accuracy budget when its dev drop stays within it with this probability under the
    paired bootstrap (the drop's ``confidence``-quantile is at most ``max_accuracy_drop``); None: when its raw dev
    drop is (the rule before issue #13)."""
    speeds: Tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(101))
    """Speeds to search."""
    batch_size: int = 64
    """Examples per forward pass."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """The resamples behind ``confidence`` and the reported intervals."""
    resplits: int = 0
    """Also pool dev and test, re-split them at random this many times, and report how often the budget held on
    the part not chosen on (NumPy only, about a second each on SST-2); 0 skips it."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.max_accuracy_drop < 0:
            raise ConfigError(f"max_accuracy_drop must be >= 0 points, got {self.max_accuracy_drop}")
        check_confidence(self.confidence)
        if isinstance(self.resplits, bool) or not isinstance(self.resplits, int) or self.resplits < 0:
            raise ConfigError(f"resplits must be a whole number >= 0, got {self.resplits!r}")
        if self.min_flops_speedup < 1:
            raise ConfigError(f"min_flops_speedup must be >= 1, got {self.min_flops_speedup}")
        object.__setattr__(self, "speeds", normalize_speeds(self.speeds))
        if 0.0 not in self.speeds:
            raise ConfigError("speeds must include 0 (the full model is the reference)")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class TimedCalibrateConfig:
    """Choose (width, speed) on dev for a runtime and precision by measured time (``calibrate --runtime``)."""

    model_dir: str
    """A stage-3 (distill) directory."""
    output_dir: str
    """Where timed.json, timed.md and the measured exports (exports/) go."""
    data: DataConfig
    """The data folder (dev chooses, test reports)."""
    runtime: str = "onnxruntime"
    """The runtime that will serve the model (paddle-inference, onnxruntime)."""
    precision: str = "fp32"
    """fp32; int8 on onnxruntime; bf16 on paddle-inference."""
    threads: int = 2
    """CPU threads of every runtime measured."""
    reference_runtime: str = "auto"
    """Where the full model (fp32, no exit) is timed as the reference: a runtime name, or auto: the fastest here."""
    max_accuracy_drop: float = default(CalibrateConfig, "max_accuracy_drop")
    """Points of dev accuracy the chosen point may lose against the reference."""
    confidence: Optional[float] = default(CalibrateConfig, "confidence")
    """Within the accuracy budget with this probability under the paired bootstrap (as calibrate's); None: the raw
    dev drop."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """The resamples behind ``confidence``."""
    min_throughput_speedup: Optional[float] = None
    """Wall-clock budget: at least this many times the reference's texts per second at batch 32."""
    max_latency_ms: Optional[float] = None
    """Wall-clock budget: at most this many milliseconds per text at batch 1 (median)."""
    widths: Optional[Tuple[float, ...]] = None
    """Widths to measure; None: every width the model has branches for."""
    speeds: Tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
    """Speeds to measure at every width (each is a pass over dev)."""
    batch_size: int = 32
    """Texts per batch of the throughput passes."""
    latency_samples: int = 64
    """Dev texts timed one at a time for the latency."""

    def __post_init__(self) -> None:
        check_finite(self)
        check_confidence(self.confidence)
        if self.runtime not in ("paddle-inference", "onnxruntime"):
            raise ConfigError(f"runtime {self.runtime!r} is not paddle-inference or onnxruntime")
        if self.precision not in ("fp32", "bf16", "int8"):
            raise ConfigError(f"precision {self.precision!r} is not fp32, bf16 or int8")
        if self.max_accuracy_drop < 0:
            raise ConfigError(f"max_accuracy_drop must be >= 0 points, got {self.max_accuracy_drop}")
        if self.min_throughput_speedup is not None and self.min_throughput_speedup <= 0:
            raise ConfigError(f"min_throughput_speedup must be > 0, got {self.min_throughput_speedup}")
        if self.max_latency_ms is not None and self.max_latency_ms <= 0:
            raise ConfigError(f"max_latency_ms must be > 0, got {self.max_latency_ms}")
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(sorted((float(w) for w in self.widths), reverse=True)))
        object.__setattr__(self, "speeds", normalize_speeds(self.speeds))
        for name in ("threads", "batch_size", "latency_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class PipelineConfig:
    """All stages of one run (``paddle-dynafast pipeline``); every default is the one of the stage it feeds."""

    output_dir: str
    """The run directory; every stage writes a subdirectory."""
    data: DataConfig
    """Examples and their cutting, for every stage (its split_seed too)."""
    model_dir: Optional[str] = None
    """Pretrained model (PaddleNLP or Hugging Face directory); None with random_init: a character vocabulary."""
    random_init: bool = default(FinetuneConfig, "random_init")
    """Start the teacher from random weights."""
    size: ModelSize = field(default_factory=ModelSize)
    """Teacher size when there is no model_dir."""
    finetune: TrainConfig = field(default_factory=lambda: default(FinetuneConfig, "train"))
    """Optimisation of stage 1."""
    supernet: TrainConfig = field(default_factory=lambda: default(SupernetConfig, "train"))
    """Optimisation of stage 2."""
    distill: TrainConfig = field(default_factory=lambda: default(SelfDistillConfig, "train"))
    """Optimisation of stage 3."""
    widths: Tuple[float, ...] = default(SupernetConfig, "widths")
    """Supernet widths."""
    lambda_distill: float = default(SupernetConfig, "lambda_distill")
    """Supernet hidden-state MSE weight."""
    lambda_logit: float = default(SupernetConfig, "lambda_logit")
    """Supernet soft cross-entropy weight."""
    branch: BranchConfig = field(default_factory=BranchConfig)
    """Size of every branch."""
    shared_branches: bool = default(SelfDistillConfig, "shared_branches")
    """One set of branches for all widths."""
    importance_examples: int = default(SupernetConfig, "importance_examples")
    """Training examples held out to score heads and neurons."""
    max_accuracy_drop: float = default(CalibrateConfig, "max_accuracy_drop")
    """Calibration budget in dev accuracy points."""
    min_flops_speedup: float = default(CalibrateConfig, "min_flops_speedup")
    """Reverse calibration budget."""
    confidence: Optional[float] = default(CalibrateConfig, "confidence")
    """Probability with which the calibrated point's dev drop stays within the budget (None: the raw drop)."""
    int8: bool = False
    """Also export the adaptive model in int8 (model.int8.onnx, dynamic activations), and time it that way in the
    summary; the full model stays float32, its best runtime here."""
    bench_samples: int = 100
    """Texts timed at batch 1 for the summary's latency (0 skips the timing)."""

    def __post_init__(self) -> None:
        check_finite(self)
        object.__setattr__(self, "widths", normalize_widths(self.widths))
        if self.max_accuracy_drop < 0:
            raise ConfigError(f"max_accuracy_drop must be >= 0 points, got {self.max_accuracy_drop}")
        if self.min_flops_speedup < 1:
            raise ConfigError(f"min_flops_speedup must be >= 1, got {self.min_flops_speedup}")
        check_confidence(self.confidence)
        if self.bench_samples < 0:
            raise ConfigError(f"bench_samples must be >= 0, got {self.bench_samples}")


@dataclass(frozen=True)
class ServeConfig:
    """The HTTP server of an exported model (``paddle-dynafast serve``): where it listens, how it batches, what it
    accepts."""

    host: str = "127.0.0.1"
    """Interface to listen on (0.0.0.0 for every interface)."""
    port: int = 8189
    """TCP port (0: any free port)."""
    batching: bool = True
    """Dynamic batching: requests that arrive within ``batch_window_ms`` run as one batch. False runs every request
    alone, as it arrives."""
    batch_window_ms: float = 5.0
    """How long the oldest waiting request waits for others of the same speed before its batch runs."""
    max_batch_size: int = 32
    """Texts per batch; a batch closes early when it is full (one request with more texts runs alone, cut into
    batches of this size)."""
    max_texts: int = 64
    """Texts (or pairs) one request may carry; more is refused with 413."""
    max_request_bytes: int = 1 << 20
    """Largest request body; a larger one is refused with 413."""
    speed: float = 0.0
    """The speed of a request that gives none (0: no early exit)."""
    drain_seconds: float = 30.0
    """On Ctrl-C or SIGTERM, how long requests in flight may take to finish before they are cancelled."""

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port!r} is not in [0, 65535]")
        if not self.batch_window_ms >= 0:
            raise ConfigError(f"batch_window_ms must be >= 0, got {self.batch_window_ms!r}")
        for name in ("max_batch_size", "max_texts", "max_request_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if not 0 <= self.speed <= 1:
            raise ConfigError(f"speed {self.speed} is not in [0, 1]")
        _positive("drain_seconds", self.drain_seconds)


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass (tuples become lists, as JSON reads them back)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: Type[T], data: dict) -> T:
    """Rebuild a config written by :func:`to_dict`; unknown or missing keys are errors naming them."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {unknown}")
    kwargs = {}
    for name, value in data.items():
        sub = fields[name].type
        sub_cls = _NESTED.get(sub) if isinstance(sub, str) else None
        kwargs[name] = from_dict(sub_cls, value) if sub_cls is not None and isinstance(value, dict) else value
    return cls(**kwargs)


_NESTED = {"DataConfig": DataConfig, "TrainConfig": TrainConfig, "ModelSize": ModelSize, "BranchConfig": BranchConfig,
           "BootstrapConfig": BootstrapConfig, "AugmentConfig": AugmentConfig}
