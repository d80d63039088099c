"""The configurations of the training stages: optimisation, the teacher, the supernet, the branches."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..errors import ConfigError
from .base import _positive, check_finite, check_seed
from .data import DataConfig


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
    """One set of branches for all widths (True) or one set per width (False: as many sets as widths)."""
    objective: str = "mix"
    """'mix': mix_alpha x KL(branch || final classifier) + (1 - mix_alpha) x cross-entropy to the gold labels (on
    the labelled rows; unlabeled and augmented texts get the KL only); 'distill': the KL alone, no labels (FastBERT);
    'labels': the cross-entropy alone (the paper's ablation)."""
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
