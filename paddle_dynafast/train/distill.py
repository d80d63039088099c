"""Stage 3: FastBERT self-distillation of the branches, at every width (arXiv 2004.02178, section 3.2).

The backbone and its final classifier are frozen; each branch learns to match
the final classifier of its own width, ``KL(branch || final)`` summed over
branches and widths (the ``distill`` objective: no labels are needed, so raw text
from ``--unlabeled`` and augmented copies of the training texts,
:mod:`paddle_dynafast.train.augment`, work as well as the training split). The
``labels`` objective trains the same branches on the gold labels instead: the
paper's ablation; ``mix``, the default, weighs the two, ``alpha KL + (1 - alpha)
CE`` (the cross-entropy on the rows that have a label). The KL may be softened by
a temperature (``T^2 KL`` of ``softmax(z / T)``).

The stage directory holds a :class:`~paddle_dynafast.model.dynafast.DynaFastModel`.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import paddle
import paddle.nn.functional as F

from .. import atomic, data, distributed
from ..config import BRANCH_KINDS, BranchConfig, DataConfig, PipelineConfig, SelfDistillConfig, TrainConfig, default
from ..errors import ConfigError
from ..model.branches import Branches
from ..model.dynafast import BRANCH_FILE, BRANCH_WEIGHTS, PICKLE_BRANCH_WEIGHTS, DynaFastModel
from ..model.exit import AdaptiveClassifier
from ..model.loading import check_max_seq_len, load_classifier, save_classifier
from ..model.over_loader import layer_probabilities
from ..model.stage_info import StageInfo
from ..model.weights import SAFE_WEIGHTS
from ..stats import per_layer_report
from .augment import add_augment_arguments, augment_features, augment_from_args
from .loop import LoopState
from .losses import kl_divergence, labelled_cross_entropy
from .stage import Stage, StageResult, TrainSetup, backward_per_width, teacher_labels

logger = logging.getLogger(__name__)


class BranchObjective(paddle.nn.Layer):
    """The loss of one batch at one width, summed over the branches (a layer, so ``paddle.DataParallel`` can
    wrap it; the step runs forward and backward once per width, see :func:`paddle_dynafast.train.stage.backward_per_width`).

    ``distill``: ``KL(branch || final classifier of the same width)`` (at
    ``temperature``); ``labels``: cross-entropy of every branch to the gold labels;
    ``mix``: ``alpha KL + (1 - alpha) CE``, the cross-entropy over the rows that
    have a label. The backbones run without gradients; only the branches learn.
    """

    def __init__(self, adaptive: Dict[float, AdaptiveClassifier], branches: Branches, objective: str,
                 alpha: float = 0.5, temperature: float = 1.0):
        super().__init__()
        self.adaptive, self.branches, self.objective = adaptive, branches, objective
        self.alpha, self.temperature = alpha, temperature

    def forward(self, input_ids, token_type_ids, labels, width: float):
        model = self.adaptive[width]
        with paddle.no_grad():
            states, mask = model.hidden_states(input_ids, token_type_ids)
            final = model.classify(model.num_layers - 1, states[-1], mask)
        total = 0.0
        for index, branch in enumerate(self.branches.at(width)):
            logits = branch(states[index], mask)  # [batch, num_labels]
            if self.objective == "distill":
                total = total + kl_divergence(logits, final, self.temperature)
            elif self.objective == "labels":
                total = total + F.cross_entropy(logits, labels)
            else:
                total = total + (self.alpha * kl_divergence(logits, final, self.temperature)
                                 + (1 - self.alpha) * labelled_cross_entropy(logits, labels))
        return total


class DistillStage(Stage):
    """Train branches after every layer at every width; see the module docstring."""

    name = "distill"
    run_dir = "dynafast"
    config_class = SelfDistillConfig
    own_files = Stage.own_files + (BRANCH_FILE, BRANCH_WEIGHTS, PICKLE_BRANCH_WEIGHTS)
    help = "stage 3: FastBERT branches at every width, distilled from the final classifier (and the labels)"
    description = ("Add a branch classifier after every layer and train the branches on half the KL to their width's "
                   "final classifier (FastBERT's self-distillation) and half the cross-entropy to the labels "
                   "(--objective distill: the KL alone, no labels needed); backbone and final classifier frozen.")
    example = ("paddle-dynafast distill --model runs/supernet --data-dir ../shared/data/sst2 --output runs/dynafast "
               "--max-seq-len 64")

    def prepare(self) -> Dict[str, Any]:
        config = self.config
        loaded = load_classifier(config.model_dir, trust_pickle=self.trust_pickle)
        self.backbone, self.tokenizer = loaded.model, loaded.tokenizer
        check_max_seq_len(self.backbone.config, config.data.max_seq_len, config.model_dir)
        available = StageInfo.read(config.model_dir).widths
        self.widths = config.widths or available
        untrained = [w for w in self.widths if w not in available]
        if untrained:
            raise ConfigError(f"widths {untrained} were not trained in {config.model_dir} (it has {list(available)})")
        splits = data.load_splits(config.data)
        labels = teacher_labels(config.model_dir, splits["train"], self.backbone.config.num_labels, config.data.labels)
        texts = list(splits["train"])
        if config.unlabeled_file is not None:
            texts += data.read_texts(config.unlabeled_file)
        self.features = {"train": data.encode(texts, self.tokenizer, config.data.max_seq_len, labels)}
        self.features["train"] += augment_features(self.features["train"], self.backbone, self.tokenizer,
                                                   config.augment, config.train.seed)
        self.features.update({s: data.encode(splits[s], self.tokenizer, config.data.max_seq_len, labels)
                              for s in ("dev", "test") if s in splits})
        self.gold = {s: [f.label for f in self.features[s]] for s in self.features if s != "train"}
        self.labels = labels
        return {"labels": labels, "widths": list(self.widths),
                "num_examples": {s: len(f) for s, f in self.features.items()},
                "dev_fingerprint": data.fingerprint(splits["dev"])}

    def build(self) -> TrainSetup:
        config, pad = self.config, self.tokenizer.pad_token_id
        train_loader = data.make_loader(self.features["train"], pad, config.train.batch_size, shuffle=True,
                                        seed=config.train.seed)
        self.loaders = {s: data.make_loader(self.features[s], pad, config.train.eval_batch_size, shuffle=False)
                        for s in self.gold}
        layers = len(self.backbone.bert.encoder.layers)
        self.branches = Branches(layers, self.backbone.config.hidden_size, self.backbone.config.num_labels,
                                 config.branch, widths=self.widths, shared=config.shared_branches)
        self.model = DynaFastModel(self.backbone, self.tokenizer, self.branches, self.labels)
        for parameter in self.backbone.parameters():
            parameter.stop_gradient = True
        self.adaptive = {w: self.model.at(w) for w in self.widths}
        for a in self.adaptive.values():
            for parameter in a.backbone.parameters():
                parameter.stop_gradient = True
        if distributed.is_main() and not (self.output_dir / SAFE_WEIGHTS).is_file():
            with atomic.publish_files(self.output_dir) as tmp:
                save_classifier(self.backbone, self.tokenizer, tmp)
        self.objective = distributed.data_parallel(BranchObjective(self.adaptive, self.branches, config.objective,
                                                                   config.mix_alpha, config.temperature))
        return TrainSetup(self.branches, train_loader)

    def loss(self, batch):
        return backward_per_width(self.objective, self.widths, batch["input_ids"], batch["token_type_ids"],
                                  batch["labels"])

    def evaluate(self) -> Dict[str, Any]:
        metrics, scores = {}, []
        for width, a in self.adaptive.items():
            report = per_layer_report(layer_probabilities(a, self.loaders["dev"]), self.gold["dev"])
            metrics[f"dev@{width}"] = report
            scores.append(-float(np.mean(report["kl_to_final"])) if self.config.objective == "distill"
                          else float(np.mean(report["accuracy"][:-1])))  # 'labels' and 'mix' see the labels
        return {"score": float(np.mean(scores)), **metrics}

    def save_best(self, directory: Path) -> None:
        self.model.save_branches(directory)

    def report(self, state: LoopState) -> Dict[str, Any]:
        best = DynaFastModel.load(self.output_dir, trust_pickle=self.trust_pickle)  # an earlier version's run resumed
        whole = {s: data.make_loader(self.features[s], self.tokenizer.pad_token_id, self.config.train.eval_batch_size,
                                     shuffle=False, shard=False) for s in self.loaders}
        layers = {s: {str(w): per_layer_report(layer_probabilities(best.at(w), whole[s]), self.gold[s])
                      for w in self.widths} for s in whole}
        return {"best_score": state.best_score, "layers": layers}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True,
                            help="a supernet output directory (or a finetune one: width 1.0 only)")
        parser.add_argument("--widths", type=float, nargs="+", default=None, help="widths to give branches (default: all)")
        parser.add_argument("--per-width-branches", action="store_true", help="one set of branches per width, not shared")
        parser.add_argument("--objective", choices=["distill", "labels", "mix"],
                            default=default(SelfDistillConfig, "objective"),
                            help="mix: --mix-alpha x KL to the final classifier + (1 - --mix-alpha) x "
                                 "cross-entropy to the labels (default); distill: the KL alone, no labels (FastBERT); "
                                 "labels: the cross-entropy alone (the paper's ablation)")
        alpha, temperature = default(SelfDistillConfig, "mix_alpha"), default(SelfDistillConfig, "temperature")
        parser.add_argument("--mix-alpha", type=float, default=alpha, help=f"weight of the KL in 'mix' (default {alpha})")
        parser.add_argument("--temperature", type=float, default=temperature,
                            help=f"temperature of the KL, T^2 KL(softmax(b/T) || softmax(f/T)) (default {temperature})")
        parser.add_argument("--unlabeled", default=None,
                            help="raw text file, one example a line, added to the training texts")
        add_augment_arguments(parser)
        branch = BranchConfig()
        parser.add_argument("--branch-kind", choices=list(BRANCH_KINDS), default=branch.kind,
                            help="attention: FastBERT's branch; cls: the [CLS] state through a dense layer, cheaper "
                                 f"(default {branch.kind})")
        parser.add_argument("--cls-hidden-size", type=int, default=branch.cls_hidden_size,
                            help=f"branch width (default {branch.cls_hidden_size})")
        parser.add_argument("--cls-num-attention-heads", type=int, default=branch.cls_num_attention_heads,
                            help=f"branch attention heads (default {branch.cls_num_attention_heads})")

    @classmethod
    def config_from_args(cls, args, data: DataConfig, train: TrainConfig) -> SelfDistillConfig:
        return SelfDistillConfig(
            output_dir=args.output, model_dir=args.model, data=data, train=train,
            branch=BranchConfig(kind=args.branch_kind, cls_hidden_size=args.cls_hidden_size,
                                cls_num_attention_heads=args.cls_num_attention_heads),
            widths=tuple(args.widths) if args.widths else None, shared_branches=not args.per_width_branches,
            objective=args.objective, mix_alpha=args.mix_alpha, temperature=args.temperature,
            unlabeled_file=args.unlabeled, augment=augment_from_args(args))

    @classmethod
    def config_from_pipeline(cls, pipeline: PipelineConfig, model_dir: Optional[str], output_dir: str):
        return SelfDistillConfig(output_dir=output_dir, model_dir=model_dir, data=pipeline.data,
                                 train=pipeline.distill, branch=pipeline.branch,
                                 shared_branches=pipeline.shared_branches)

    @classmethod
    def summary(cls, result: StageResult) -> str:
        lines = []
        for split, by_width in result.metrics["layers"].items():
            for width, report in by_width.items():
                if "accuracy" in report:
                    lines.append(f"{split} width {width}: accuracy per layer "
                                 + " ".join(f"{100 * a:.1f}" for a in report["accuracy"])
                                 + "; agreement with the final classifier "
                                 + " ".join(f"{100 * a:.1f}" for a in report["agreement"]))
        return "\n".join(lines + [f"-> {result.output_dir}"])


def self_distill(config: SelfDistillConfig, logdir: Optional[str] = None, restart: bool = False,
                 trust_pickle: bool = False) -> StageResult:
    """Stage 3 (:class:`DistillStage`)."""
    return DistillStage(config, logdir, trust_pickle).run(restart)
