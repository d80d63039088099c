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
  ``SuperLayerNorm.forward`` are fixed by :mod:`paddle_dynafast.compat`.

A fixed width becomes a :class:`NarrowBertForSequenceClassification`: PaddleNLP's
``BertForSequenceClassification`` whose attention projections keep
``kept_attention_heads * head_dim`` features and whose FFN keeps
``intermediate_size`` neurons, saved with ``save_pretrained`` and loaded with
``from_pretrained``. (A plain ``BertForSequenceClassification`` cannot hold it:
PaddleNLP derives ``head_dim`` from ``hidden_size / num_attention_heads`` and
builds square attention projections.)
"""
from __future__ import annotations

import copy
import logging
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn
from paddlenlp.transformers import BertForSequenceClassification

from . import compat, distributed
from .backbone import CheckpointError, assign_weights
from .config import normalize_widths
from .flops import BertShape

logger = logging.getLogger(__name__)

WIDTH_LAYERS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "linear1")
"""Layers whose output features shrink with the width; every other layer keeps its size."""


def check_widths(widths: Sequence[float], shape: BertShape) -> Tuple[float, ...]:
    """:func:`~paddle_dynafast.config.normalize_widths`, plus a whole head count at every width for ``shape``."""
    widths = normalize_widths(widths)
    for width in widths:
        shape.heads_at(width)
    return widths


def plain_state(model: nn.Layer) -> Dict[str, np.ndarray]:
    """The weights of a (converted) model under the plain PaddleNLP names (PaddleSlim's ``.fn.`` removed)."""
    return {name.replace(".fn.", "."): value.numpy() for name, value in model.state_dict().items()}


def convert_to_supernet(model: BertForSequenceClassification, widths: Sequence[float]) -> nn.Layer:
    """Convert a copy of ``model`` to a PaddleSlim supernet holding the same weights.

    Every weight of the supernet is checked against ``model``'s; one that
    ``utils.set_state_dict`` did not fill is a :class:`CheckpointError`.
    """
    from paddleslim.nas.ofa import utils
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


# ----------------------------------------------------------------------------- fixed-width sub-models


class NarrowBertForSequenceClassification(BertForSequenceClassification):
    """``BertForSequenceClassification`` keeping ``config.kept_attention_heads`` heads per layer.

    ``config.num_attention_heads`` stays the original count, so ``head_dim`` is
    the teacher's; ``config.intermediate_size`` is already the narrowed FFN size.
    PaddleNLP's own ``forward`` runs it unchanged (it reshapes by ``num_heads``
    and ``head_dim``). Loads with ``from_pretrained``.
    """

    def __init__(self, config):
        super().__init__(config)
        kept = int(config.kept_attention_heads)
        for layer in self.bert.encoder.layers:
            attn = layer.self_attn
            if not 0 < kept <= attn.num_heads:
                raise ValueError(f"kept_attention_heads {kept} is not in 1..{attn.num_heads}")
            inner, hidden = kept * attn.head_dim, config.hidden_size
            attn.q_proj, attn.k_proj, attn.v_proj = (nn.Linear(hidden, inner) for _ in range(3))
            attn.out_proj = nn.Linear(inner, hidden)
            attn.num_heads = kept
            for linear in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
                self._init_weights(linear)


def narrow_weights(state: Dict[str, np.ndarray], shape: BertShape, width: float) -> Dict[str, np.ndarray]:
    """The first heads and neurons of every layer: the sub-network a supernet runs at ``width``.

    ``state`` holds full-width weights under plain PaddleNLP names (Paddle
    layout ``[in, out]``); heads and neurons are already ordered by importance.
    """
    inner = shape.heads_at(width) * shape.head_dim
    neurons = shape.neurons_at(width)
    out = {}
    for name, value in state.items():
        module, _, param = name.rpartition(".")
        if module.endswith(("q_proj", "k_proj", "v_proj")):
            value = value[..., :inner]  # weight [hidden, inner], bias [inner]
        elif module.endswith("out_proj") and param == "weight":
            value = value[:inner, :]  # [inner, hidden]
        elif module.endswith("linear1"):
            value = value[..., :neurons]  # weight [hidden, neurons], bias [neurons]
        elif module.endswith("linear2") and param == "weight":
            value = value[:neurons, :]  # [neurons, hidden]
        out[name] = np.ascontiguousarray(value)
    return out


def extract_submodel(model: nn.Layer, config, width: float) -> NarrowBertForSequenceClassification:
    """A standalone model equal to the supernet (or reordered model) ``model`` at ``width``."""
    shape = BertShape.from_config(config)
    narrow_config = copy.deepcopy(config)
    narrow_config.kept_attention_heads = shape.heads_at(width)
    narrow_config.intermediate_size = shape.neurons_at(width)
    narrow_config.dynabert_width = float(width)
    narrow_config.architectures = ["NarrowBertForSequenceClassification"]
    sub = NarrowBertForSequenceClassification(narrow_config)
    assign_weights(sub, narrow_weights(plain_state(model), shape, width))
    sub.eval()
    return sub


def count_parameters(model: nn.Layer, include_embeddings: bool = True) -> int:
    """Number of parameters, optionally without the embedding tables."""
    return int(sum(int(np.prod(p.shape)) for name, p in model.named_parameters()
                   if include_embeddings or ".embeddings." not in f".{name}"))


def evaluate_widths(ofa, widths: Iterable[float], loader, labels: Sequence[int]) -> Dict[str, float]:
    """Accuracy of the supernet at every width, keyed ``"1.0"``, ``"0.5"``..."""
    from .train import accuracy, predict

    results = {}
    ofa.model.eval()
    for width in widths:
        ofa.set_net_config(width_config(ofa, width))
        results[str(width)] = accuracy(predict(lambda batch: supernet_logits(ofa, batch), loader), labels)
    return results


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
        from .losses import soft_cross_entropy

        self.ofa.set_net_config(width_config(self.ofa, width))
        student_logits, teacher_logits = self.ofa(input_ids, token_type_ids=token_type_ids)
        return self.ofa.calc_distill_loss() + self.lambda_logit * soft_cross_entropy(student_logits, teacher_logits)


def train_supernet(config, logdir: str | None = None, restart: bool = False):
    """Stage 2: score and reorder the teacher, convert it to a supernet, and distil every width.

    Writes to ``config.output_dir``: the supernet's full-width weights as a
    PaddleNLP directory (heads and neurons reordered; ``from_pretrained`` gives
    the width-1.0 model), ``importance.json``, one ``width-W/`` sub-model directory
    per narrower width (:class:`NarrowBertForSequenceClassification`),
    ``stage.json`` and ``metrics.json`` (dev accuracy per width each epoch; at the
    end dev and test accuracy, parameters and analytic FLOPs per width, next to
    the teacher's). Resumes like stage 1.
    """
    from pathlib import Path

    from . import artifacts, data, train
    from .backbone import build_classifier, head_mask_forward, load_classifier, save_classifier
    from .config import to_dict
    from .importance import reorder

    done = train.begin_stage("supernet", config, restart)
    if done is not None:
        return done
    output_dir = Path(config.output_dir)

    teacher_loaded = load_classifier(config.teacher_dir)
    teacher, tokenizer = teacher_loaded.model, teacher_loaded.tokenizer
    shape = BertShape.from_config(teacher.config)
    widths = check_widths(config.widths, shape)
    splits = data.load_splits(config.data.data_dir, config.data.max_examples, config.data.dev_fraction,
                              seed=config.train.seed)
    labels = train.teacher_labels(config.teacher_dir, splits["train"], teacher.config.num_labels)
    train_examples, scoring_examples = data.hold_out(splits["train"], config.importance_examples, config.train.seed)
    splits = {**splits, "train": train_examples, "importance": scoring_examples}
    features = {split: data.encode(examples, tokenizer, config.data.max_seq_len, labels)
                for split, examples in splits.items()}
    pad = tokenizer.pad_token_id
    def eval_loaders(shard):
        return {split: data.make_loader(f, pad, config.train.eval_batch_size, shuffle=False, shard=shard)
                for split, f in features.items() if split != "train"}

    loaders = eval_loaders(shard=True)
    train_loader = data.make_loader(features["train"], pad, config.train.batch_size, shuffle=True,
                                    seed=config.train.seed)
    gold = {split: [f.label for f in features[split]] for split in features}

    info = {"stage": "supernet", "complete": False, "config": to_dict(config), "labels": labels,
            "num_examples": {split: len(f) for split, f in features.items()}, "versions": train.versions()}
    train.write_stage_info(output_dir, info)

    importance = _importance(output_dir, teacher, eval_loaders(shard=False)["importance"], shape)
    student = copy.deepcopy(teacher)
    reorder(student, importance)
    converted = convert_to_supernet(student, widths)
    ofa = make_ofa(converted, teacher=teacher, lambda_distill=config.lambda_distill)
    objective = distributed.data_parallel(WidthObjective(ofa, config.lambda_logit))
    plain = build_classifier(teacher.config)  # the full-width twin that is saved

    def loss_fn(batch):
        total = 0.0
        for width in widths:  # largest first; gradients add up over the widths
            loss = objective(batch["input_ids"], batch["token_type_ids"], width)
            loss.backward()
            total += float(loss)
        return paddle.to_tensor(total)

    def evaluate_fn():
        accuracy = evaluate_widths(ofa, widths, loaders["dev"], gold["dev"])
        return {"score": float(np.mean(list(accuracy.values()))),
                **{f"dev_accuracy@{w}": a for w, a in accuracy.items()}}

    def on_best(metrics):
        assign_weights(plain, plain_state(converted))
        with artifacts.publish_files(output_dir) as tmp:
            save_classifier(plain, tokenizer, tmp)

    with head_mask_forward(converted):
        loop = train.TrainLoop(converted, config.train, train_loader, output_dir / train.CHECKPOINT_DIR, loss_fn,
                               evaluate_fn, on_best, logdir=logdir, name="supernet")
        state = loop.run()
    if not distributed.is_main():
        return train.finish_stage(output_dir, info, {})
    metrics = {"best_mean_dev_accuracy": state.best_score, "history": state.history, "train_steps": state.step,
               "train_seconds": round(state.train_seconds, 1),
               "widths": _final_report(output_dir, widths, teacher, tokenizer, eval_loaders(shard=False), gold,
                                       features, shape)}
    return train.finish_stage(output_dir, info, metrics)


def _importance(output_dir, teacher, loader, shape: BertShape):
    """Scores of heads and neurons, on rank 0 (read back on resume, else computed and written), broadcast to
    the others. Only rank 0 looks for the file: another rank could find it just written and skip the broadcast
    that rank 0 makes, and the ranks' collectives would no longer pair up."""
    from . import artifacts
    from .importance import Importance, compute_importance

    path = output_dir / "importance.json"
    importance = None
    if distributed.is_main():
        if path.is_file():
            raw = artifacts.read_json(path)
            importance = Importance(heads=np.asarray(raw["heads"]), neurons=np.asarray(raw["neurons"]))
        else:
            logger.info("scoring heads and neurons on %d held-out training examples", len(loader.dataset))
            importance = compute_importance(copy.deepcopy(teacher), loader)
            artifacts.write_json(path, {"examples": len(loader.dataset), "heads": importance.heads.tolist(),
                                        "neurons": importance.neurons.tolist(),
                                        "head_order": importance.head_order().tolist()})
    heads = distributed.broadcast_array(None if importance is None else importance.heads,
                                        [shape.num_layers, shape.num_heads])
    neurons = distributed.broadcast_array(None if importance is None else importance.neurons,
                                          [shape.num_layers, shape.intermediate_size])
    return Importance(heads=heads, neurons=neurons)


def _final_report(output_dir, widths, teacher, tokenizer, loaders, gold, features, shape) -> Dict[str, Dict]:
    """Reload the best supernet, export every width, and measure it against the teacher."""
    from . import artifacts, train
    from .backbone import head_mask_forward, load_classifier
    from .flops import model_flops

    best = load_classifier(output_dir).model
    ofa = make_ofa(convert_to_supernet(best, widths))
    splits = [s for s in ("dev", "test") if s in loaders]
    tokens = {s: [len(f.input_ids) for f in features[s]] for s in splits}
    report = {"teacher": {f"{s}_accuracy": train.accuracy(train.predict_logits(teacher, loaders[s]), gold[s])
                          for s in splits}}
    report["teacher"]["parameters"] = count_parameters(teacher)
    with head_mask_forward(ofa.model):
        for width in widths:
            row = {f"{s}_accuracy": evaluate_widths(ofa, [width], loaders[s], gold[s])[str(width)] for s in splits}
            sub = best if width == 1.0 else extract_submodel(best, best.config, width)
            if width != 1.0:
                directory = output_dir / f"width-{width}"
                with artifacts.atomic_dir(directory) as tmp:
                    sub.save_pretrained(str(tmp))
                    tokenizer.save_pretrained(str(tmp))
                reloaded = NarrowBertForSequenceClassification.from_pretrained(str(directory))
                reloaded.eval()
                row["submodel_dev_accuracy"] = train.accuracy(train.predict_logits(reloaded, loaders["dev"]),
                                                              gold["dev"])
                row["submodel_dir"] = directory.name
            row["heads_per_layer"] = shape.heads_at(width)
            row["neurons_per_layer"] = shape.neurons_at(width)
            row["parameters"] = count_parameters(sub)
            row["parameters_without_embeddings"] = count_parameters(sub, include_embeddings=False)
            row["dev_mean_flops"] = float(np.mean([model_flops(shape, t, width) for t in tokens["dev"]]))
            report[str(width)] = row
            logger.info("width %s: %s", width, row)
    return report
