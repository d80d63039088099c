"""The DynaBERT width supernet on PaddleSlim's OFA (arXiv 2004.04037, section 3.1).

Follows PaddleSlim's "compress BERT with DynaBERT" tutorial on PaddleSlim's own
API: ``supernet(expand_ratio=widths)`` -> ``Convert`` -> ``utils.set_state_dict``
with the (importance-reordered) teacher weights -> ``DistillConfig`` with the
embeddings and every encoder layer as mapping layers -> ``OFA`` with
``set_task("width")``; each width's configuration comes from
``utils.dynabert_config``.

Where we differ from the tutorial and PaddleNLP's ``trainer_compress``:

* the supernet runs through :func:`paddle_dynafast.backbone.head_mask_forward`,
  which reads the number of heads from the query width instead of mutating
  ``num_heads`` inside ``forward``, and patches one instance in a ``with`` block
  instead of assigning ``forward`` on ``paddle.nn`` classes;
* ``dynabert_config`` picks layers by the position of their counter-derived
  names (``linear_7``); :func:`width_config` checks its answer against the
  layers' real names and raises if the two disagree;
* ``utils.set_state_dict`` only logs weights it could not fill;
  :func:`convert_to_supernet` checks that every weight arrived;
* PaddleSlim 2.6.0's ``SuperEmbedding``/``SuperLayerNorm`` constructors and
  ``SuperLayerNorm.forward`` are fixed by :mod:`paddle_dynafast.train.compat`;
* the tutorial calls ``ofa.set_epoch(epoch)`` every epoch; we do not, because in
  PaddleSlim 2.6.0 it only sets ``OFA.epoch``, which ``OFA`` reads in
  ``_progressive_shrinking`` alone, and that runs only when no ``net_config`` is
  set and ``set_task`` was not called; we call ``set_task("width")`` and set
  every width's ``net_config`` before each forward, as the tutorial does, so
  the epoch never matters (tested: the training step never consults it);
* the supernet's loss needs no labels, so raw text (``unlabeled_file``) and
  augmented copies of the training texts (:mod:`paddle_dynafast.train.augment`)
  can be added to its training data, as TinyBERT's augmented data is in DynaBERT.

PaddleSlim itself is imported inside the functions that build a supernet, not at
the top: the command line builds its parser from every stage, and its
deployment commands (``predict``, ``bench``, ``serve``) should not load
PaddleSlim and everything it pulls in (OpenCV, scikit-learn).

Every width is exported as a standalone
:class:`~paddle_dynafast.model.narrow.NarrowBertForSequenceClassification`.
"""
from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import paddle
import paddle.nn as nn
from paddlenlp.transformers import BertForSequenceClassification

from .. import atomic, data, distributed, stats
from ..config import DataConfig, PipelineConfig, SupernetConfig, TrainConfig, default
from ..errors import CheckpointError
from ..model.flops import BertShape, full_flops
from ..model.forward import head_mask_forward
from ..model.loading import assign_weights, build_classifier, check_max_seq_len, load_classifier, save_classifier
from ..model.narrow import (NarrowBertForSequenceClassification, check_widths, count_parameters, extract_submodel,
                            plain_state)
from ..model.over_loader import accuracy, predict, predict_logits
from . import compat
from .augment import add_augment_arguments, augment_features, augment_from_args
from .importance import Importance, compute_importance, reorder
from .loop import LoopState
from .losses import soft_cross_entropy
from .stage import Stage, StageResult, TrainSetup, backward_per_width, teacher_labels

logger = logging.getLogger(__name__)

WIDTH_LAYERS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "linear1")
"""Layers whose output features shrink with the width; every other layer keeps its size."""


def convert_to_supernet(model: BertForSequenceClassification, widths: Sequence[float]) -> nn.Layer:
    """Convert a copy of ``model`` to a PaddleSlim supernet holding the same weights.

    Every weight of the supernet is checked against ``model``'s; one that
    ``utils.set_state_dict`` did not fill is a :class:`CheckpointError`.
    """
    from paddleslim.nas.ofa import utils  # only when a supernet is built (module docstring)
    from paddleslim.nas.ofa.convert_super import Convert, supernet
    widths = check_widths(widths, BertShape.from_config(model.config))
    origin = model.state_dict()
    expected = {name: value.numpy() for name, value in origin.items()}
    with compat.paddleslim_constructors():
        converted = Convert(supernet(expand_ratio=sorted(widths))).convert(copy.deepcopy(model))
    utils.set_state_dict(converted, origin)
    got = plain_state(converted)
    missing = sorted(set(expected) - set(got))
    unfilled = sorted(k for k in got if k not in expected or not np.array_equal(got[k], expected[k]))
    if missing or unfilled:
        raise CheckpointError(f"supernet conversion lost weights {missing} and left unfilled {unfilled}")
    compat.fix_super_layer_norms(converted)
    return converted


def mapping_layers(model: nn.Layer) -> List[str]:
    """The layers whose outputs the student matches to the teacher's: embeddings and every encoder layer."""
    prefix = model.base_model_prefix
    layers = len(model.bert.encoder.layers)
    return [f"{prefix}.embeddings"] + [f"{prefix}.encoder.layers.{i}" for i in range(layers)]


def make_ofa(converted: nn.Layer, teacher: nn.Layer | None = None, lambda_distill: float = 0.1):
    """PaddleSlim ``OFA`` around a converted model, distilling from ``teacher`` when given.

    The teacher is put in eval mode with its parameters frozen (``stop_gradient``).
    """
    from paddleslim.nas.ofa import OFA, DistillConfig
    distill = None
    if teacher is not None:
        teacher.eval()
        for parameter in teacher.parameters():
            parameter.stop_gradient = True
        distill = DistillConfig(lambda_distill=lambda_distill, teacher_model=teacher,
                                mapping_layers=mapping_layers(converted))
    ofa = OFA(converted, distill_config=distill, elastic_order=["width"])
    ofa.set_task("width")
    return ofa


def width_config(ofa, width: float) -> Dict[str, Dict[str, float]]:
    """``utils.dynabert_config(ofa, width)``, checked layer by layer against the layers' real names."""
    from paddleslim.nas.ofa import utils
    config = utils.dynabert_config(ofa, width)
    for name, layer_config in config.items():
        if not isinstance(layer_config, dict) or "expand_ratio" not in layer_config:
            continue
        expected = width if name.endswith(WIDTH_LAYERS) else 1.0
        if layer_config["expand_ratio"] != expected:
            raise RuntimeError(f"dynabert_config set {name} to width {layer_config['expand_ratio']}, expected "
                               f"{expected}; the model's layer order is not the one dynabert_config assumes")
    return config


def supernet_logits(ofa, batch: Dict[str, paddle.Tensor]) -> paddle.Tensor:
    """Student logits ``[batch, num_labels]`` at the width set by ``ofa.set_net_config``."""
    out = ofa(batch["input_ids"], token_type_ids=batch["token_type_ids"])
    return out[0] if isinstance(out, tuple) else out


def evaluate_widths(ofa, widths: Iterable[float], loader, labels: Sequence[int]) -> Dict[str, float]:
    """Accuracy of the supernet at every width, keyed ``"1.0"``, ``"0.5"``..."""
    return {str(width): accuracy(width_logits(ofa, width, loader), labels) for width in widths}


def width_logits(ofa, width: float, loader) -> np.ndarray:
    """The supernet's logits ``[examples, num_labels]`` at ``width`` over ``loader``, in dataset order."""
    ofa.model.eval()
    ofa.set_net_config(width_config(ofa, width))
    return predict(lambda batch: supernet_logits(ofa, batch), loader)


# ----------------------------------------------------------------------------- stage 2


class WidthObjective(nn.Layer):
    """The loss of one batch at one width: OFA's hidden-state MSE plus ``lambda_logit`` x soft cross-entropy to
    the teacher's logits (DynaBERT, eq. 2-3).

    A layer, so that ``paddle.DataParallel`` can wrap it; the training step runs
    forward and backward once per width, as PaddleNLP's DynaBERT does
    (``paddle.DataParallel``'s gradient reducer is only right when every
    parameter is used once between two backward passes). Only the OFA student
    is registered: the frozen teacher is not synchronised.
    """

    def __init__(self, ofa, lambda_logit: float):
        super().__init__()
        self.student = ofa.model
        self.__dict__["ofa"] = ofa  # not a sublayer: it also holds the teacher
        self.lambda_logit = lambda_logit

    def forward(self, input_ids, token_type_ids, width: float):
        self.ofa.set_net_config(width_config(self.ofa, width))
        student_logits, teacher_logits = self.ofa(input_ids, token_type_ids=token_type_ids)
        return self.ofa.calc_distill_loss() + self.lambda_logit * soft_cross_entropy(student_logits, teacher_logits)


class SupernetStage(Stage):
    """Score and reorder the teacher, convert it to a supernet, and distil every width.

    Writes to ``output_dir``: the supernet's full-width weights as a PaddleNLP
    directory (heads and neurons reordered; ``from_pretrained`` gives the
    width-1.0 model), ``importance.json``, one ``width-W/`` sub-model directory per
    narrower width (:class:`NarrowBertForSequenceClassification`), ``stage.json``
    and ``metrics.json`` (dev accuracy per width each epoch; at the end dev and
    test accuracy, parameters and analytic FLOPs per width, next to the teacher's,
    and each width's difference to the teacher with its paired-bootstrap 95 %
    interval and McNemar's p, ``dev_vs_teacher`` / ``test_vs_teacher``).
    """

    name = "supernet"
    run_dir = "supernet"
    config_class = SupernetConfig
    own_files = Stage.own_files + ("importance.json", "width-*")
    help = "stage 2: DynaBERT width supernet on PaddleSlim OFA"
    description = ("Score heads and FFN neurons on held-out training examples, reorder them, convert the teacher to "
                   "a PaddleSlim supernet and distil every width from it.")
    example = ("paddle-dynafast supernet --model runs/teacher --data-dir ../shared/data/sst2 --output runs/supernet "
               "--max-seq-len 64")

    def prepare(self) -> Dict[str, Any]:
        config = self.config
        loaded = load_classifier(config.teacher_dir, trust_pickle=self.trust_pickle)
        self.teacher, self.tokenizer = loaded.model, loaded.tokenizer
        check_max_seq_len(self.teacher.config, config.data.max_seq_len, config.teacher_dir)
        self.shape = BertShape.from_config(self.teacher.config)
        self.widths = check_widths(config.widths, self.shape)
        splits = data.load_splits(config.data)
        labels = teacher_labels(config.teacher_dir, splits["train"], self.teacher.config.num_labels,
                                config.data.labels)
        train_examples, scoring_examples = data.hold_out(splits["train"], config.importance_examples,
                                                         config.train.seed)
        if config.unlabeled_file is not None:  # distillation needs no labels
            train_examples = train_examples + data.read_texts(config.unlabeled_file)
        splits = {**splits, "train": train_examples, "importance": scoring_examples}
        self.features = {split: data.encode(examples, self.tokenizer, config.data.max_seq_len, labels)
                         for split, examples in splits.items()}
        self.features["train"] += augment_features(self.features["train"], self.teacher, self.tokenizer,
                                                   config.augment, config.train.seed)
        self.gold = {split: [f.label for f in self.features[split]] for split in self.features}
        return {"labels": labels, "num_examples": {split: len(f) for split, f in self.features.items()},
                "dev_fingerprint": data.fingerprint(splits["dev"])}

    def _eval_loaders(self, shard: bool):
        return {split: data.make_loader(f, self.tokenizer.pad_token_id, self.config.train.eval_batch_size,
                                        shuffle=False, shard=shard)
                for split, f in self.features.items() if split != "train"}

    def build(self) -> TrainSetup:
        config = self.config
        self.loaders = self._eval_loaders(shard=True)
        train_loader = data.make_loader(self.features["train"], self.tokenizer.pad_token_id, config.train.batch_size,
                                        shuffle=True, seed=config.train.seed)
        importance = _importance(self.output_dir, self.teacher, self._eval_loaders(shard=False)["importance"],
                                 self.shape)
        student = copy.deepcopy(self.teacher)
        reorder(student, importance)
        self.converted = convert_to_supernet(student, self.widths)
        self.ofa = make_ofa(self.converted, teacher=self.teacher, lambda_distill=config.lambda_distill)
        self.objective = distributed.data_parallel(WidthObjective(self.ofa, config.lambda_logit))
        self.plain = build_classifier(self.teacher.config)  # the full-width twin that is saved
        return TrainSetup(self.converted, train_loader, context=head_mask_forward(self.converted))

    def loss(self, batch):
        return backward_per_width(self.objective, self.widths, batch["input_ids"], batch["token_type_ids"])

    def evaluate(self) -> Dict[str, Any]:
        accuracy = evaluate_widths(self.ofa, self.widths, self.loaders["dev"], self.gold["dev"])
        return {"score": float(np.mean(list(accuracy.values()))),
                **{f"dev_accuracy@{w}": a for w, a in accuracy.items()}}

    def save_best(self, directory: Path) -> None:
        assign_weights(self.plain, plain_state(self.converted))
        save_classifier(self.plain, self.tokenizer, directory)

    def report(self, state: LoopState) -> Dict[str, Any]:
        return {"best_mean_dev_accuracy": state.best_score,
                "widths": _final_report(self.output_dir, self.trust_pickle, self.widths, self.teacher, self.tokenizer,
                                        self._eval_loaders(shard=False), self.gold, self.features, self.shape)}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True, help="the fine-tuned teacher (a finetune output directory)")
        widths = default(SupernetConfig, "widths")
        parser.add_argument("--widths", type=float, nargs="+", default=list(widths),
                            help=f"widths to train, 1.0 included (default {' '.join(map(str, widths))})")
        for flag, name, what in (("--lambda-distill", "lambda_distill", "hidden-state MSE weight"),
                                 ("--lambda-logit", "lambda_logit", "soft cross-entropy weight")):
            value = default(SupernetConfig, name)
            parser.add_argument(flag, type=float, default=value, help=f"{what} (default {value})")
        value = default(SupernetConfig, "importance_examples")
        parser.add_argument("--importance-examples", type=int, default=value,
                            help=f"training examples held out to score heads and neurons (default {value})")
        parser.add_argument("--unlabeled", default=None,
                            help="raw text file, one example a line, distilled from the teacher besides the "
                                 "training texts (no labels needed)")
        add_augment_arguments(parser)

    @classmethod
    def config_from_args(cls, args, data: DataConfig, train: TrainConfig) -> SupernetConfig:
        return SupernetConfig(output_dir=args.output, teacher_dir=args.model, data=data, train=train,
                              widths=tuple(args.widths), lambda_distill=args.lambda_distill,
                              lambda_logit=args.lambda_logit, importance_examples=args.importance_examples,
                              unlabeled_file=args.unlabeled, augment=augment_from_args(args))

    @classmethod
    def config_from_pipeline(cls, pipeline: PipelineConfig, model_dir: Optional[str], output_dir: str):
        return SupernetConfig(output_dir=output_dir, teacher_dir=model_dir, data=pipeline.data,
                              train=pipeline.supernet, widths=pipeline.widths, lambda_distill=pipeline.lambda_distill,
                              lambda_logit=pipeline.lambda_logit, importance_examples=pipeline.importance_examples)

    @classmethod
    def summary(cls, result: StageResult) -> str:
        report = result.metrics["widths"]
        splits = [s for s in ("dev", "test") if f"{s}_accuracy" in report["teacher"]]
        lines = ["width    " + "  ".join(f"{s} acc" for s in splits) + "   parameters   mean FLOPs",
                 "teacher  " + "  ".join(f"{100 * report['teacher'][f'{s}_accuracy']:6.2f}" for s in splits)
                 + f"   {report['teacher']['parameters']:>10,}"]
        for width, row in report.items():
            if width != "teacher":
                lines.append(f"{width:<8} " + "  ".join(f"{100 * row[f'{s}_accuracy']:6.2f}" for s in splits)
                             + f"   {row['parameters']:>10,}   {row['dev_mean_flops'] / 1e6:8.1f} M")
        return "\n".join(lines + [f"-> {result.output_dir}"])


def train_supernet(config: SupernetConfig, logdir: Optional[str] = None, restart: bool = False,
                   trust_pickle: bool = False) -> StageResult:
    """Stage 2 (:class:`SupernetStage`); resumes like stage 1."""
    return SupernetStage(config, logdir, trust_pickle).run(restart)


def _importance(output_dir, teacher, loader, shape: BertShape):
    """Scores of heads and neurons, on rank 0 (read back on resume, else computed and written), broadcast to
    the others. Only rank 0 looks for the file: another rank could find it just written and skip the broadcast
    that rank 0 makes, and the ranks' collectives would no longer pair up."""
    path = output_dir / "importance.json"
    importance = None
    if distributed.is_main():
        if path.is_file():
            raw = atomic.read_json(path)
            importance = Importance(heads=np.asarray(raw["heads"]), neurons=np.asarray(raw["neurons"]))
        else:
            logger.info("scoring heads and neurons on %d held-out training examples", len(loader.dataset))
            importance = compute_importance(copy.deepcopy(teacher), loader)
            atomic.write_json(path, {"examples": len(loader.dataset), "heads": importance.heads.tolist(),
                                        "neurons": importance.neurons.tolist(),
                                        "head_order": importance.head_order().tolist()})
    heads = distributed.broadcast_array(None if importance is None else importance.heads,
                                        [shape.num_layers, shape.num_heads])
    neurons = distributed.broadcast_array(None if importance is None else importance.neurons,
                                          [shape.num_layers, shape.intermediate_size])
    return Importance(heads=heads, neurons=neurons)


def _final_report(output_dir, trust_pickle, widths, teacher, tokenizer, loaders, gold, features,
                  shape) -> Dict[str, Dict]:
    """Reload the best supernet, export every width, and measure it against the teacher."""
    best = load_classifier(output_dir, trust_pickle=trust_pickle).model
    ofa = make_ofa(convert_to_supernet(best, widths))
    splits = [s for s in ("dev", "test") if s in loaders]
    tokens = {s: [len(f.input_ids) for f in features[s]] for s in splits}
    teacher_correct = {s: predict_logits(teacher, loaders[s]).argmax(-1) == np.asarray(gold[s]) for s in splits}
    report = {"teacher": {f"{s}_accuracy": float(teacher_correct[s].mean()) for s in splits}}
    report["teacher"]["parameters"] = count_parameters(teacher)
    with head_mask_forward(ofa.model):
        for width in widths:
            row = {}
            for s in splits:
                correct = width_logits(ofa, width, loaders[s]).argmax(-1) == np.asarray(gold[s])
                row[f"{s}_accuracy"] = float(correct.mean())
                row[f"{s}_vs_teacher"] = stats.paired_against(correct, teacher_correct[s])
            sub = best if width == 1.0 else extract_submodel(best, best.config, width)
            if width != 1.0:
                directory = output_dir / f"width-{width}"
                with atomic.atomic_dir(directory) as tmp:
                    save_classifier(sub, tokenizer, tmp)
                reloaded = NarrowBertForSequenceClassification.from_pretrained(str(directory))
                reloaded.eval()
                row["submodel_dev_accuracy"] = accuracy(predict_logits(reloaded, loaders["dev"]), gold["dev"])
                row["submodel_dir"] = directory.name
            row["heads_per_layer"] = shape.heads_at(width)
            row["neurons_per_layer"] = shape.neurons_at(width)
            row["parameters"] = count_parameters(sub)
            row["parameters_without_embeddings"] = count_parameters(sub, include_embeddings=False)
            row["dev_mean_flops"] = float(full_flops(shape, tokens["dev"], width).mean())
            report[str(width)] = row
            logger.info("width %g: %s, %d heads and %d neurons per layer, %s parameters", width,
                        ", ".join(f"{s} {100 * row[f'{s}_accuracy']:.2f}" for s in splits), row["heads_per_layer"],
                        row["neurons_per_layer"], f"{row['parameters']:,}")
    return report
