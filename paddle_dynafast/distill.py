"""Stage 3: FastBERT self-distillation of the branches, at every width (arXiv 2004.02178, section 3.2).

The backbone and its final classifier are frozen; each branch learns to match
the final classifier of its own width, ``KL(branch || final)`` summed over
branches and widths, so no labels are needed (raw text from ``--unlabeled``
works as well as the training split). The ``labels`` objective trains the same
branches on the gold labels instead: the paper's ablation.

The stage directory holds a :class:`DynaFastModel`: the full-width backbone as a
PaddleNLP directory (heads and neurons in importance order when it comes from a
supernet), ``branches.pdparams`` and ``branches.json``. A narrower width's
backbone is cut from it on load (:func:`paddle_dynafast.supernet.extract_submodel`),
which equals the supernet at that width.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from . import artifacts, data, distributed, train
from .backbone import load_classifier, save_classifier
from .branches import Branches
from .config import SelfDistillConfig, to_dict
from .exit import AdaptiveClassifier
from .losses import kl_divergence
from .supernet import extract_submodel

logger = logging.getLogger(__name__)

BRANCH_WEIGHTS = "branches.pdparams"
BRANCH_FILE = "branches.json"


class DynaFastModel:
    """A backbone with branches at one or more widths; :meth:`at` gives the exit-loop model of a width."""

    def __init__(self, backbone, tokenizer, branches: Branches, labels: Sequence[str]):
        self.backbone, self.tokenizer, self.branches, self.labels = backbone, tokenizer, branches, list(labels)
        self._at: Dict[float, AdaptiveClassifier] = {}

    @property
    def widths(self) -> Tuple[float, ...]:
        return self.branches.widths

    def at(self, width: float) -> AdaptiveClassifier:
        """The :class:`AdaptiveClassifier` of ``width`` (built once, in eval mode)."""
        width = float(width)
        if width not in self.widths:
            raise ValueError(f"width {width} has no branches; this model has widths {list(self.widths)}")
        if width not in self._at:
            backbone = self.backbone if width == 1.0 else extract_submodel(self.backbone, self.backbone.config, width)
            backbone.eval()
            self._at[width] = AdaptiveClassifier(backbone, self.branches.at(width))
        return self._at[width]

    def save_branches(self, directory: Path) -> None:
        paddle.save(self.branches.state_dict(), str(directory / BRANCH_WEIGHTS))
        artifacts.write_json(directory / BRANCH_FILE, {**self.branches.describe(), "labels": self.labels})

    @classmethod
    def load(cls, directory: str | Path) -> "DynaFastModel":
        """Read a stage-3 directory; a directory without branches is an error that says so."""
        directory = Path(directory)
        if not (directory / BRANCH_FILE).is_file():
            raise FileNotFoundError(f"{directory} has no {BRANCH_FILE}: it is not a model with branches "
                                    "(run `paddle-dynafast distill` on it first)")
        description = artifacts.read_json(directory / BRANCH_FILE)
        loaded = load_classifier(directory)
        branches = Branches.from_description(description)
        state = paddle.load(str(directory / BRANCH_WEIGHTS))
        from .backbone import assign_weights

        assign_weights(branches, {k: v.numpy() for k, v in state.items()})
        branches.eval()
        return cls(loaded.model, loaded.tokenizer, branches, description["labels"])


def available_widths(model_dir: str | Path) -> Tuple[float, ...]:
    """The widths a model directory was trained for: a supernet's widths, else only 1.0."""
    stage = Path(model_dir) / train.STAGE_FILE
    if stage.is_file():
        info = artifacts.read_json(stage)
        if info.get("stage") == "supernet":
            return tuple(info["config"]["widths"])
    return (1.0,)


@paddle.no_grad()
def layer_probabilities(adaptive: AdaptiveClassifier, loader) -> np.ndarray:
    """Every classifier's probabilities ``[examples, num_layers, num_labels]``, in dataset order."""
    adaptive.eval()
    return train.predict(lambda b: F.softmax(adaptive.layer_logits(b["input_ids"], b["token_type_ids"]), axis=-1),
                         loader)


def per_layer_report(layer_probs: np.ndarray, gold: Optional[Sequence[int]]) -> Dict[str, List[float]]:
    """Accuracy of every layer's classifier (if labelled) and each branch's KL to the final classifier."""
    p = np.clip(layer_probs.astype("float64"), 1e-30, None)
    final = p[:, -1:, :]
    kl = (p[:, :-1] * (np.log(p[:, :-1]) - np.log(final))).sum(-1).mean(0)  # [layers - 1]
    report = {"kl_to_final": kl.round(6).tolist()}
    if gold is not None and min(gold) >= 0:
        report["accuracy"] = (layer_probs.argmax(-1) == np.asarray(gold)[:, None]).mean(0).round(6).tolist()
    return report


class BranchObjective(paddle.nn.Layer):
    """The loss of one batch at one width, summed over the branches (a layer, so ``paddle.DataParallel`` can
    wrap it; the step runs forward and backward once per width, see :class:`paddle_dynafast.supernet.WidthObjective`).

    ``distill``: ``KL(branch || final classifier of the same width)``; ``labels``:
    cross-entropy of every branch to the gold labels. The backbones run without
    gradients; only the branches learn.
    """

    def __init__(self, adaptive: Dict[float, AdaptiveClassifier], branches: Branches, objective: str):
        super().__init__()
        self.adaptive, self.branches, self.objective = adaptive, branches, objective

    def forward(self, input_ids, token_type_ids, labels, width: float):
        model = self.adaptive[width]
        with paddle.no_grad():
            states, mask = model.hidden_states(input_ids, token_type_ids)
            final = model.classify(model.num_layers - 1, states[-1], mask)
        total = 0.0
        for index, branch in enumerate(self.branches.at(width)):
            logits = branch(states[index], mask)  # [batch, num_labels]
            if self.objective == "distill":
                total = total + kl_divergence(logits, final)
            else:
                total = total + F.cross_entropy(logits, labels)
        return total


def self_distill(config: SelfDistillConfig, logdir: Optional[str] = None, restart: bool = False) -> train.StageResult:
    """Stage 3: train branches after every layer at every width; see the module docstring."""
    done = train.begin_stage("distill", config, restart)
    if done is not None:
        return done
    output_dir = Path(config.output_dir)

    loaded = load_classifier(config.model_dir)
    backbone, tokenizer = loaded.model, loaded.tokenizer
    available = available_widths(config.model_dir)
    widths = config.widths or available
    untrained = [w for w in widths if w not in available]
    if untrained:
        raise ValueError(f"widths {untrained} were not trained in {config.model_dir} (it has {list(available)})")
    splits = data.load_splits(config.data.data_dir, config.data.max_examples, config.data.dev_fraction,
                              seed=config.train.seed)
    labels = train.teacher_labels(config.model_dir, splits["train"], backbone.config.num_labels)
    texts = list(splits["train"])
    if config.unlabeled_file is not None:
        texts += data.read_texts(config.unlabeled_file)
    features = {"train": data.encode(texts, tokenizer, config.data.max_seq_len, labels)}
    features.update({s: data.encode(splits[s], tokenizer, config.data.max_seq_len, labels)
                     for s in ("dev", "test") if s in splits})
    pad = tokenizer.pad_token_id
    train_loader = data.make_loader(features["train"], pad, config.train.batch_size, shuffle=True,
                                    seed=config.train.seed)
    loaders = {s: data.make_loader(features[s], pad, config.train.eval_batch_size, shuffle=False)
               for s in features if s != "train"}
    gold = {s: [f.label for f in features[s]] for s in loaders}

    layers = len(backbone.bert.encoder.layers)
    branches = Branches(layers, backbone.config.hidden_size, backbone.config.num_labels, config.branch,
                        widths=widths, shared=config.shared_branches)
    model = DynaFastModel(backbone, tokenizer, branches, labels)
    for parameter in backbone.parameters():
        parameter.stop_gradient = True
    adaptive = {w: model.at(w) for w in widths}
    for a in adaptive.values():
        for parameter in a.backbone.parameters():
            parameter.stop_gradient = True

    info = {"stage": "distill", "complete": False, "config": to_dict(config), "labels": labels, "widths": list(widths),
            "num_examples": {s: len(f) for s, f in features.items()}, "versions": train.versions()}
    train.write_stage_info(output_dir, info)
    if distributed.is_main() and not (output_dir / "model_state.pdparams").is_file():
        with artifacts.publish_files(output_dir) as tmp:
            save_classifier(backbone, tokenizer, tmp)
    objective = distributed.data_parallel(BranchObjective(adaptive, branches, config.objective))

    def loss_fn(batch):
        total = 0.0
        for width in widths:
            loss = objective(batch["input_ids"], batch["token_type_ids"], batch["labels"], width)
            loss.backward()
            total += float(loss)
        return paddle.to_tensor(total)

    def evaluate_fn():
        metrics, scores = {}, []
        for width, a in adaptive.items():
            report = per_layer_report(layer_probabilities(a, loaders["dev"]), gold["dev"])
            metrics[f"dev@{width}"] = report
            scores.append(-float(np.mean(report["kl_to_final"])) if config.objective == "distill"
                          else float(np.mean(report["accuracy"][:-1])))
        return {"score": float(np.mean(scores)), **metrics}

    def on_best(metrics):
        with artifacts.publish_files(output_dir) as tmp:
            model.save_branches(tmp)

    loop = train.TrainLoop(branches, config.train, train_loader, output_dir / train.CHECKPOINT_DIR, loss_fn,
                           evaluate_fn, on_best, logdir=logdir, name="distill")
    state = loop.run()
    if not distributed.is_main():
        return train.finish_stage(output_dir, info, {})

    best = DynaFastModel.load(output_dir)
    whole = {s: data.make_loader(features[s], pad, config.train.eval_batch_size, shuffle=False, shard=False)
             for s in loaders}
    final = {s: {str(w): per_layer_report(layer_probabilities(best.at(w), whole[s]), gold[s]) for w in widths}
             for s in whole}
    metrics = {"best_score": state.best_score, "history": state.history, "train_steps": state.step,
               "train_seconds": round(state.train_seconds, 1), "layers": final}
    return train.finish_stage(output_dir, info, metrics)
