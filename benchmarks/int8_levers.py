"""The int8 lever table of issue 22 (item 3): for each way of quantizing an export's matrix products, how often its
label differs from float32's, its accuracy, whether a text's answer depends on its batch, and its speed.

    nice -n 5 .venv/bin/python benchmarks/int8_levers.py --export runs/sst2/export --data-dir data/sst2 \\
        --speed 0.3 --threads 2 --output runs/int8-levers/export.md

The export holds ``model.onnx`` (the plain classifier or the exit loop: ``export.json`` says which); every lever's
model is built from it by :func:`paddle_dynafast.runtime.quantize.quantize_onnx`. On dev + test of ``--data-dir``
(file order, batches of 32, at ``--speed`` for an exit loop) each row gives:

- the flip rate: the share of texts whose label differs from ``model.onnx``'s, on dev + test and on test alone (the
  mixed-precision rows are chosen on dev, so their test column is the unbiased one);
- accuracy on dev and on test;
- batch dependence: the first ``--alone`` texts one at a time against in batches of 32 (labels changed, exit
  layers changed, largest |difference| of a probability);
- speed: texts/s at batch 32 and ms per text at batch 1, ONNX Runtime in this process (``--threads`` intra-op
  threads, no spinning), every lever's session open, the levers interleaved over ``--rounds`` rounds (the order
  rotated each round), medians. Deterministic columns are exact; speed is indicative on a shared machine.

The levers (rows):

1. float32 (``model.onnx``, the reference);
2. per tensor, ``quantize_onnx(..., "dynamic")``: one activation scale per batch (the old default);
3. per token, 7-bit weights, ``"token"``, every product int8 (``export --int8 --int8-float-products 0``);
4. per token with 8-bit weights (``weight_bits=8``): AVX2's ``vpmaddubsw`` adds pairs of uint8 x int8 products in
   int16, which can saturate;
5. mixed precision, what ``export --int8`` does by default (4 products): the export's sensitivity sweep
   (:mod:`paddle_dynafast.runtime.sensitivity`) quantizes one backbone product at a time per token (all others
   float32) and runs the ``--calibration-texts`` train texts; products are ranked by the mean KL divergence of
   their probabilities from float32's (flips beside it), no labels used, and the ``k`` most sensitive
   (``--keep``) stay float32 (left out of ``quantize_onnx``'s weights);
6. SmoothQuant (Xiao et al. 2022, arXiv 2211.10438) on top of per token: for every input channel ``j`` of the
   quantized products, ``s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha)`` (``--alpha``), the weight's row ``j``
   multiplied by ``s_j`` and a ``Mul`` by ``1 / s`` inserted before the product, in float32. ``max|X_j|`` is taken
   over ``--calibration-texts`` texts of the train split (seeded sample, each text alone: no padding) in Paddle
   dygraph, by forward pre-hooks on the ``nn.Linear`` layers of the model the export came from (``"source"`` in
   ``export.json``, or ``--source``), rebuilt as the export built it; products that share an input (query, key and
   value) share one ``s``, the maximum of ``max|W_j|`` over their weights, as SmoothQuant does;
7. quantization-aware distillation on top of per token (:mod:`paddle_dynafast.train.qad`): the source model's
   product weights trained for ``--qad-steps`` steps (AdamW, ``--qad-lr``, batches of 32 over ``--qad-texts``
   texts of the train split, seeded sample) with the per-token int8 rounding simulated in Paddle, toward the
   float32 model's own probabilities (every classifier's, branches included); the trained weights are written
   into a copy of ``model.onnx`` by name, which is then quantized per token. ``--qad-steps 0`` leaves the row out.

The ``nn.Linear`` weights of the source model are matched to the ONNX constants by content (Paddle's generated
names such as ``linear_12.w_0`` depend on what else the process built), which also names each product by its layer
(``bert.encoder.layers.3.linear1``).

Writes ``--output`` (Markdown: the command, the machine, the data sizes, the lever table, the sweep) and the same
numbers as JSON beside it (``.json``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import onnxruntime
import paddle
import paddle.nn as nn
from onnx import helper, numpy_helper

from paddle_dynafast import data
from paddle_dynafast.config import ExportConfig
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.model.forward import Probabilities
from paddle_dynafast.model.loading import load_classifier, load_tokenizer
from paddle_dynafast.model.narrow import extract_submodel
from paddle_dynafast.runtime import quantize, sensitivity
from paddle_dynafast.runtime.export import clean_onnx
from paddle_dynafast.runtime.export_info import ONNX_FILE, ExportInfo
from paddle_dynafast.runtime.onnx_runtime import session_options
from paddle_dynafast.runtime.threads import paddle_threads
from paddle_dynafast.train import qad

BATCH = 32


# ---------------------------------------------------------------- data and sessions

@dataclass
class Texts:
    """dev + test encoded, in file order."""

    features: List[data.Features]
    pad: int
    n_dev: int

    @property
    def gold(self) -> np.ndarray:
        return np.array([f.label for f in self.features])  # [texts], -1 unlabelled


def batches(features: Sequence[data.Features], pad: int, size: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``(input_ids, token_type_ids)`` ``[batch, seq]`` of consecutive texts, each batch padded to its longest."""
    collate = data.Collator(pad)
    out = []
    for start in range(0, len(features), size):
        batch = collate(list(enumerate(features[start:start + size])))
        out.append((batch["input_ids"], batch["token_type_ids"]))
    return out


class Session:
    """ONNX Runtime on one model file, answering ``(probs [n, labels], exit_layer [n])`` over batches."""

    def __init__(self, path: Path, info: ExportInfo, threads: int, speed: float):
        self.session = onnxruntime.InferenceSession(str(path), session_options(threads),
                                                    providers=["CPUExecutionProvider"])
        self.info, self.speed = info, speed
        names = info.onnx_outputs or tuple(o.name for o in self.session.get_outputs())
        self.fetch = list(names[:2] if info.exit_loop else names[:1])

    def run(self, chunks) -> Tuple[np.ndarray, np.ndarray]:
        probs, layers = [], []
        for ids, types in chunks:
            feeds = {"input_ids": ids, "token_type_ids": types}
            if self.info.exit_loop:
                feeds["speed"] = np.array([self.speed], dtype="float32")
            values = self.session.run(self.fetch, feeds)
            probs.append(values[0])
            layers.append(values[1].reshape(-1) if self.info.exit_loop
                          else np.full(len(ids), self.info.num_layers, dtype="int64"))
        return np.concatenate(probs), np.concatenate(layers)


# ---------------------------------------------------------------- the source model and the products

def source_layer(info: ExportInfo, source: Path):
    """``(layer, run)``: the dygraph layer the export was made from, built as ``export_model`` builds it, and the
    call that runs all its layers on ``(input_ids, token_type_ids)``."""
    if DynaFastModel.has_branches(source):
        adaptive = DynaFastModel.load(source).at(info.width)
        if info.exit_loop:
            return adaptive, adaptive.layer_logits
        backbone = adaptive.backbone
    else:
        if info.exit_loop:
            raise SystemExit(f"{source} has no branches, but the export has the exit loop: pass --source")
        loaded = load_classifier(source)
        backbone = (loaded.model if info.width == 1.0
                    else extract_submodel(loaded.model, loaded.model.config, info.width))
    layer = Probabilities(backbone)
    layer.eval()
    return layer, layer


def _content(array: np.ndarray) -> str:
    return hashlib.sha256(str(array.shape).encode() + np.ascontiguousarray(array, dtype="float32").tobytes()).hexdigest()


def graphs(graph):
    """``graph`` and every subgraph inside it (the exit loop's ``If`` branches)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from graphs(attribute.g)


def weight_constants(model) -> Dict[str, np.ndarray]:
    """``{name: [in, out]}`` of every 2-D ``Constant`` of the main graph that is a ``MatMul``'s right operand, in
    the order of first use."""
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    found: Dict[str, np.ndarray] = {}
    for graph in graphs(model.graph):
        for node in graph.node:
            if node.op_type == "MatMul" and node.input[1] in constants and node.input[1] not in found:
                weight = numpy_helper.to_array(constants[node.input[1]].attribute[0].t)
                if weight.ndim == 2:
                    found[node.input[1]] = weight
    return found


def linear_products(layer: nn.Layer, weights: Dict[str, np.ndarray]) -> Dict[str, Tuple[str, nn.Linear]]:
    """``{ONNX weight name: (layer path, nn.Linear)}`` of the source's ``nn.Linear`` layers whose weight is one of
    the ONNX model's (what ``quantize_onnx`` quantizes in an export), in the ONNX model's order."""
    by_content = {_content(w): name for name, w in weights.items()}
    found = {}
    for path, module in layer.named_sublayers(include_self=True):
        if isinstance(module, nn.Linear):
            name = by_content.get(_content(module.weight.numpy()))
            if name is not None and name not in found:
                found[name] = (path or type(layer).__name__, module)
    if not found:
        raise SystemExit("no nn.Linear weight of the source model is a constant of model.onnx: is --source the "
                         "model this export was made from?")
    return {name: found[name] for name in weights if name in found}


@paddle.no_grad()
def channel_maxima(products: Dict[str, Tuple[str, nn.Linear]], run, features: Sequence[data.Features],
                   pad: int) -> Dict[str, np.ndarray]:
    """``{ONNX weight name: max |x_j| [in]}`` of each product's input over ``features``, each text alone."""
    maxima: Dict[str, np.ndarray] = {}
    handles = []
    for name, (_, linear) in products.items():
        def record(module, inputs, name=name):
            x = paddle.abs(inputs[0]).reshape([-1, inputs[0].shape[-1]]).max(axis=0).numpy()  # [in]
            maxima[name] = np.maximum(maxima[name], x) if name in maxima else x
        handles.append(linear.register_forward_pre_hook(record))
    try:
        for ids, types in batches(features, pad, 1):
            run(paddle.to_tensor(ids), paddle.to_tensor(types))
    finally:
        for handle in handles:
            handle.remove()
    missing = sorted(set(products) - set(maxima))
    if missing:
        raise SystemExit(f"calibration never ran the products of {[products[m][0] for m in missing]}")
    return maxima


def with_weights(source: Path, target: Path, arrays: Dict[str, np.ndarray]) -> None:
    """Write ``target``: ``source`` with the ``Constant`` weights named in ``arrays`` replaced by them."""
    model = onnx.load(str(source))
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    for name, array in arrays.items():
        constants[name].attribute[0].t.CopyFrom(numpy_helper.from_array(array.astype("float32"), name))
    onnx.save(model, str(target))


def distilled_weights(products: Dict[str, Tuple[str, nn.Linear]], layer: nn.Layer, run, exit_loop: bool,
                      features: Sequence[data.Features], pad: int, steps: int, lr: float) -> Tuple[Dict, Dict]:
    """Quantization-aware distillation of the products' weights (module docstring, lever 7): ``({ONNX weight name:
    trained [in, out]}, {"loss": [...]})``. Trains ``layer``'s weights in place."""
    linears = [linear for _, linear in products.values()]

    def progress(step, loss):
        if step == 1 or step % 50 == 0 or step == steps:
            print(f"  QAD step {step}/{steps}: KL {loss:.2e}", file=sys.stderr, flush=True)

    history = qad.distill_quantized(layer, run, linears, batches(features, pad, BATCH), steps, lr,
                                    are_logits=exit_loop, progress=progress)
    return {name: linear.weight.numpy() for name, (_, linear) in products.items()}, history


# ---------------------------------------------------------------- SmoothQuant

def smooth(source: Path, target: Path, maxima: Dict[str, np.ndarray], alpha: float) -> Dict[str, int]:
    """Write ``target``: ``source`` with every product by a weight of ``maxima`` smoothed (module docstring): weight
    rows times ``s``, a ``Mul`` by ``1 / s`` on the input. Products joined by a shared input or a shared weight form
    one group with one ``s``. Returns ``{"groups": ..., "muls": ...}``."""
    model = onnx.load(str(source))
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    parent: Dict[tuple, tuple] = {}

    def find(key):
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for graph in graphs(model.graph):
        for node in graph.node:
            if node.op_type == "MatMul" and node.input[1] in maxima:
                parent[find(("w", node.input[1]))] = find(("x", node.input[0]))
    groups = defaultdict(list)
    for key in list(parent):
        groups[find(key)].append(key)
    inverse_of: Dict[str, str] = {}  # input name -> the name of its 1 / s
    for number, members in enumerate(groups.values()):
        weights = [name for kind, name in members if kind == "w"]
        arrays = {w: numpy_helper.to_array(constants[w].attribute[0].t) for w in weights}
        x_max = np.maximum.reduce([maxima[w] for w in weights]).astype("float64")  # [in]
        w_max = np.maximum.reduce([np.abs(a).max(axis=1) for a in arrays.values()]).astype("float64")  # [in]
        usable = (x_max > 0) & (w_max > 0)
        scale = np.ones_like(x_max)
        scale[usable] = x_max[usable] ** alpha / w_max[usable] ** (1 - alpha)
        scale = np.clip(scale, 1e-5, 1e5)
        for w, array in arrays.items():
            constants[w].attribute[0].t.CopyFrom(numpy_helper.from_array((array * scale[:, None]).astype("float32"), w))
        inverse = f"smooth{number}.inverse"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype("float32"), inverse))
        for kind, name in members:
            if kind == "x":
                inverse_of[name] = inverse
    muls = 0
    for graph in graphs(model.graph):
        nodes, smoothed = [], {}  # input name -> its smoothed name, in this graph
        for node in graph.node:
            if node.op_type == "MatMul" and node.input[1] in maxima:
                x = node.input[0]
                if x not in smoothed:
                    smoothed[x] = f"{x}.smoothed"
                    nodes.append(helper.make_node("Mul", [x, inverse_of[x]], [smoothed[x]], name=f"{x}.smooth"))
                    muls += 1
                node.input[0] = smoothed[x]
            nodes.append(node)
        del graph.node[:]
        graph.node.extend(nodes)
    onnx.save(model, str(target))
    return {"groups": len(groups), "muls": muls}


# ---------------------------------------------------------------- the levers

@dataclass
class Lever:
    name: str
    path: Path
    products: int
    """How many products run in int8."""
    result: Dict[str, object] = field(default_factory=dict)


def quantized(source: Path, target: Path, weights: Sequence[str], activations: str,
              weight_bits: Optional[int] = None) -> Path:
    quantize.quantize_onnx(source, target, {w: None for w in weights}, activations, weight_bits)
    return target


def evaluate(session: Session, texts: Texts, reference: Optional[np.ndarray], alone: int) -> Dict[str, object]:
    """The deterministic columns of one lever, its flips against the probabilities ``reference`` (None: itself)."""
    probs, layers = session.run(batches(texts.features, texts.pad, BATCH))
    labels, gold = probs.argmax(axis=1), texts.gold
    ref_labels = labels if reference is None else reference.argmax(axis=1)
    dev = slice(0, texts.n_dev)
    test = slice(texts.n_dev, len(labels))

    def accuracy(part):
        known = gold[part] >= 0
        return float((labels[part][known] == gold[part][known]).mean()) if known.any() else None

    one = session.run(batches(texts.features[:alone], texts.pad, 1))
    return {"probs": probs, "layers": layers,
            "flips": int((labels != ref_labels).sum()), "flip_rate": float((labels != ref_labels).mean()),
            "test_flips": int((labels[test] != ref_labels[test]).sum()),
            "test_flip_rate": float((labels[test] != ref_labels[test]).mean()),
            "dev_accuracy": accuracy(dev), "test_accuracy": accuracy(test), "mean_exit_layer": float(layers.mean()),
            "alone_labels_changed": int((one[0].argmax(axis=1) != labels[:alone]).sum()),
            "alone_exit_layers_changed": int((one[1] != layers[:alone]).sum()),
            "alone_max_prob_difference": float(np.abs(one[0] - probs[:alone]).max())}


def sweep(source: Path, products: Dict[str, Tuple[str, nn.Linear]], info: ExportInfo, calibration: Texts,
          threads: int) -> List[Dict[str, object]]:
    """The export's own sweep (:mod:`paddle_dynafast.runtime.sensitivity`) over the calibration texts: every product
    of the backbone per token alone (the others float32), most sensitive first (mean KL, then flips)."""
    backbone = {weight: path for weight, (path, _) in products.items() if sensitivity.in_backbone(path)}
    ranking = sensitivity.sweep(source, backbone, batches(calibration.features, calibration.pad, BATCH),
                                dict.fromkeys(backbone), "token", info.exit_loop, threads)
    return [row.to_json() for row in ranking]


def time_levers(sessions: Dict[str, Session], texts: Texts, speed_texts: int, latency_texts: int,
                rounds: int) -> Dict[str, Dict[str, float]]:
    """Texts/s at batch 32 and ms per text at batch 1 of every lever, interleaved over rounds, medians."""
    big = batches(texts.features[:speed_texts], texts.pad, BATCH)
    small = batches(texts.features[:latency_texts], texts.pad, 1)
    throughput, latency = defaultdict(list), defaultdict(list)
    names = list(sessions)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            start = time.perf_counter()
            sessions[name].run(big)
            throughput[name].append(min(speed_texts, len(texts.features)) / (time.perf_counter() - start))
            start = time.perf_counter()
            sessions[name].run(small)
            latency[name].append(1e3 * (time.perf_counter() - start) / min(latency_texts, len(texts.features)))
        print(f"  timing round {round_ + 1}/{rounds} done", file=sys.stderr, flush=True)
    return {name: {"texts_per_second": statistics.median(throughput[name]),
                   "ms_per_text": statistics.median(latency[name])} for name in names}


# ---------------------------------------------------------------- the report

def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{model} ({sum(line.startswith('processor') for line in lines)} logical CPUs; {', '.join(shown) or 'no AVX2'})"


def percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def markdown(report: Dict[str, object]) -> str:
    r = report
    exit_loop = r["export"]["exit_loop"]
    lines = [f"# int8 levers: {r['export']['directory']}", "",
             f"- command: `{r['command']}`",
             f"- machine: {r['machine']}; ONNX Runtime {r['onnxruntime']}, {r['threads']} intra-op thread(s), "
             f"in process; {r['date']}",
             f"- export: width {r['export']['width']}, "
             + (f"exit loop at speed {r['speed']}" if exit_loop else "plain classifier (no exits)")
             + f", {r['export']['products']} matrix products by an nn.Linear weight (of "
             f"{r['export']['matmul_weights']} MatMul weights in model.onnx); source {r['export']['source']}",
             f"- data: {r['data']['dir']}: dev {r['data']['dev']} + test {r['data']['test']} texts (file order, "
             f"batches of {BATCH}); batch dependence on the first {r['data']['alone']}; SmoothQuant calibration "
             f"{r['data']['calibration']} train texts (seed {r['data']['seed']}); speed on the first "
             f"{r['data']['speed_texts']} texts at batch {BATCH} and {r['data']['latency_texts']} at batch 1, "
             f"{r['rounds']} interleaved rounds, medians",
             "- flip rate: labels that differ from float32's (model.onnx"
             + (f" at speed {r['speed']}" if exit_loop else "") + "); the mixed-precision rows keep float32 the "
             "products the export's sweep ranks most sensitive on the calibration texts (train, no labels), as "
             "`export --int8` does (`--int8-float-products`)",
             "- speed measured on an idle machine" if r.get("idle") else
             "- speed is INDICATIVE ONLY: measured on a shared, busy machine; the other columns are exact", ""]
    head = ["lever", "int8 products", "flip rate dev+test % (n)", "flip rate test % (n)", "dev acc %", "test acc %"]
    if exit_loop:
        head.append("mean exit layer")
    head += ["alone vs b32: labels / exit layers / max abs dp", "texts/s b32", "ms/text b1", "b32 vs fp32"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    fp32_speed = r["levers"][0]["texts_per_second"]
    for row in r["levers"]:
        cells = [row["name"], str(row["products"]), f"{percent(row['flip_rate'])} ({row['flips']})",
                 f"{percent(row['test_flip_rate'])} ({row['test_flips']})", percent(row["dev_accuracy"]),
                 percent(row["test_accuracy"])]
        if exit_loop:
            cells.append(f"{row['mean_exit_layer']:.2f}")
        cells += [f"{row['alone_labels_changed']} / {row['alone_exit_layers_changed']} / "
                  f"{row['alone_max_prob_difference']:.1e}", f"{row['texts_per_second']:.0f}",
                  f"{row['ms_per_text']:.2f}", f"{row['texts_per_second'] / fp32_speed:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Sensitivity sweep (one backbone product per token, the others float32, "
              f"{r['data']['calibration']} calibration texts), the {r['sweep_shown']} most sensitive of "
              f"{len(r['sweep'])}:", "",
              "| rank | product | ONNX weight | flips | mean KL vs fp32 |", "| --- | --- | --- | --- | --- |"]
    for rank, row in enumerate(r["sweep"][:r["sweep_shown"]], start=1):
        lines.append(f"| {rank} | {row['layer']} | {row['weight']} | {row['flips']} | {row['mean_kl']:.2e} |")
    lines += ["", f"Sum of the sweep's flips over all products, each alone: "
              f"{sum(row['flips'] for row in r['sweep'])}.", "",
              f"SmoothQuant: alpha {r['smooth']['alpha']}, {r['smooth']['groups']} groups of products sharing an "
              f"input, {r['smooth']['muls']} Mul nodes inserted (kept in the graph, not folded).", ""]
    q = r["qad"]
    if q["steps"]:
        losses, per_pass = q["loss"], -(-q["texts"] // BATCH)  # the batches are cycled: one pass is per_pass steps
        lines += [f"Quantization-aware distillation: {q['steps']} steps of AdamW at lr {q['lr']:g} over {q['texts']} "
                  f"train texts (batches of {BATCH}, seed {r['data']['seed']}), the product weights only; KL(float32 "
                  f"|| simulated int8) averaged over the first pass over the texts {statistics.mean(losses[:per_pass]):.2e}"
                  f", over the last {statistics.mean(losses[-per_pass:]):.2e}; {q['seconds']:.0f} s.", ""]
    else:
        lines += ["Quantization-aware distillation: not run (`--qad-steps 0`).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", required=True, help="an export directory with model.onnx")
    parser.add_argument("--data-dir", required=True, help="a folder with train, dev and test")
    parser.add_argument("--output", required=True, help="the Markdown table (the JSON goes beside it)")
    parser.add_argument("--speed", type=float, default=0.0, help="the exit loop's speed (ignored without it)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alone", type=int, default=320, help="texts run one at a time for batch dependence")
    parser.add_argument("--speed-texts", type=int, default=320, help="texts timed at batch 32")
    parser.add_argument("--latency-texts", type=int, default=64, help="texts timed at batch 1")
    parser.add_argument("--keep", default="2,4,8", help="mixed precision: how many products stay float32")
    parser.add_argument("--alpha", type=float, default=0.5, help="SmoothQuant's migration strength")
    parser.add_argument("--calibration-texts", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="the calibration sample of train")
    parser.add_argument("--source", help="the model directory the export came from (default: export.json's)")
    parser.add_argument("--qad-steps", type=int, default=200, help="quantization-aware distillation steps (0: none)")
    parser.add_argument("--qad-texts", type=int, default=2048, help="train texts it distills on")
    parser.add_argument("--qad-lr", type=float, default=1e-6,
                        help="AdamW's learning rate (1e-5 diverged on SST-2: the KL grew 100x in 100 steps)")
    parser.add_argument("--sweep-shown", type=int, default=10, help="the sweep's most sensitive products listed")
    parser.add_argument("--idle", action="store_true",
                        help="nothing else ran while timing (else the table marks its speed columns indicative)")
    args = parser.parse_args()
    keep = sorted({int(k) for k in args.keep.split(",") if k.strip()})

    export = Path(args.export)
    info = ExportInfo.read(export)
    speed = args.speed if info.exit_loop else 0.0
    source = Path(args.source or info.source)
    tokenizer = load_tokenizer(export)
    splits = data.load_splits(args.data_dir)
    dev_test = splits["dev"] + splits["test"]
    texts = Texts(data.encode(dev_test, tokenizer, info.max_seq_len, info.labels, quiet=True),
                  tokenizer.pad_token_id, len(splits["dev"]))
    train = list(splits["train"])
    random.Random(args.seed).shuffle(train)
    calibration = data.encode(train[:args.calibration_texts], tokenizer, info.max_seq_len, quiet=True)
    qad_texts = data.encode(train[:args.qad_texts], tokenizer, info.max_seq_len, quiet=True) if args.qad_steps else []

    fp32_path = export / ONNX_FILE
    weights = weight_constants(onnx.load(str(fp32_path)))
    layer, run = source_layer(info, source)
    products = linear_products(layer, weights)
    print(f"{len(products)} products by an nn.Linear weight ({len(weights)} MatMul weights in {ONNX_FILE})",
          file=sys.stderr, flush=True)
    with paddle_threads(args.threads):
        maxima = channel_maxima(products, run, calibration, tokenizer.pad_token_id)
        started = time.perf_counter()
        trained, history = (distilled_weights(products, layer, run, info.exit_loop, qad_texts, tokenizer.pad_token_id,
                                              args.qad_steps, args.qad_lr) if args.qad_steps else ({}, {"loss": []}))
        qad_info = {"steps": args.qad_steps, "texts": len(qad_texts), "lr": args.qad_lr, **history,
                    "seconds": time.perf_counter() - started}
    del layer, run

    names = [o.name for o in onnx.load(str(fp32_path), load_external_data=False).graph.output]  # kept as they are
    with tempfile.TemporaryDirectory(prefix="int8-levers-") as tmp:
        work = Path(tmp)

        def build(name: str, make) -> Path:
            path = make(work / f"{name}.onnx")
            clean_onnx(path, names)
            return path

        reference_session = Session(fp32_path, info, args.threads, speed)
        reference = evaluate(reference_session, texts, None, args.alone)
        print("sweep:", file=sys.stderr, flush=True)
        ranking = sweep(fp32_path, products, info, Texts(calibration, tokenizer.pad_token_id, len(calibration)),
                        args.threads)
        everything = list(products)
        smoothed = work / "smooth.fp32.onnx"
        smooth_info = smooth(fp32_path, smoothed, maxima, args.alpha)
        levers = [Lever("float32", fp32_path, 0),
                  Lever("per tensor (dynamic, the old default)", build("dynamic", lambda p: quantized(
                      fp32_path, p, everything, "dynamic")), len(everything)),
                  Lever("per token, 7-bit weights, every product int8", build("token", lambda p: quantized(
                      fp32_path, p, everything, "token")), len(everything)),
                  Lever("per token, 8-bit weights", build("token8", lambda p: quantized(
                      fp32_path, p, everything, "token", 8)), len(everything))]
        for k in keep:
            kept = {row["weight"] for row in ranking[:k]}
            default = " (the default)" if k == ExportConfig.int8_float_products else ""
            levers.append(Lever(f"per token, the {k} most sensitive products float32{default}", build(
                f"mixed{k}", lambda p, kept=kept: quantized(fp32_path, p, [w for w in everything if w not in kept],
                                                            "token")), len(everything) - len(kept)))
        levers.append(Lever(f"per token + SmoothQuant alpha {args.alpha}", build("smooth", lambda p: quantized(
            smoothed, p, everything, "token")), len(everything)))
        if trained:
            distilled = work / "qad.fp32.onnx"
            with_weights(fp32_path, distilled, trained)
            levers.append(Lever(f"per token + QAD {args.qad_steps} steps", build("qad", lambda p: quantized(
                distilled, p, everything, "token")), len(everything)))

        sessions = {}
        for lever in levers:
            sessions[lever.name] = (reference_session if lever.path == fp32_path
                                    else Session(lever.path, info, args.threads, speed))
            lever.result = (reference if lever.path == fp32_path
                            else evaluate(sessions[lever.name], texts, reference["probs"], args.alone))
            print(f"{lever.name}: flip rate {percent(lever.result['flip_rate'])} %", file=sys.stderr, flush=True)
        timing = time_levers(sessions, texts, args.speed_texts, args.latency_texts, args.rounds)

    rows = [{"name": lever.name, "products": lever.products, **timing[lever.name],
             **{k: v for k, v in lever.result.items() if k not in ("probs", "layers")}} for lever in levers]
    report = {"command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
              "machine": cpu_model(), "onnxruntime": onnxruntime.__version__, "threads": args.threads,
              "date": time.strftime("%Y-%m-%d %H:%M"), "speed": speed, "rounds": args.rounds, "idle": args.idle,
              "export": {"directory": str(export), "width": info.width, "exit_loop": info.exit_loop,
                         "source": str(source), "products": len(products), "matmul_weights": len(weights)},
              "data": {"dir": args.data_dir, "dev": texts.n_dev, "test": len(texts.features) - texts.n_dev,
                       "alone": min(args.alone, len(texts.features)), "calibration": len(calibration),
                       "seed": args.seed, "speed_texts": min(args.speed_texts, len(texts.features)),
                       "latency_texts": min(args.latency_texts, len(texts.features))},
              "levers": rows, "sweep": ranking, "sweep_shown": min(args.sweep_shown, len(ranking)),
              "smooth": {"alpha": args.alpha, **smooth_info}, "qad": qad_info}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    output.write_text(table)
    output.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(table)
    print(f"-> {output} and {output.with_suffix('.json')}")


if __name__ == "__main__":
    main()
