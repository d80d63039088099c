"""Mixed precision for int8: which matrix products int8 hurts most, by a sweep that quantizes one at a time.

Each product of the backbone is quantized alone (:func:`~paddle_dynafast.runtime.quantize.quantize_model`, the
others float32) and the program is run by ONNX Runtime over some texts; the product's sensitivity is the mean
``KL(float32 || int8)`` of the probabilities, with the labels it changes beside it. No gold label is needed: the
reference is the float32 program itself. The few most sensitive products then stay float32 in the int8 export
(``ExportConfig.int8_float_products``, 4 by default). On SST-2's teacher (38 products, ONNX Runtime, idle AMD
EPYC, 2 threads) the flip rate against float32 over dev + test was 0.56 % with every product int8, 0.37 % with the
4 most sensitive float32 and 0.22 % with 8; 4 meets the 0.5 % target for 5-6 % of the throughput at batch 32 in
two runs (docs/deployment.md).

Only the backbone's products are swept (:func:`backbone_products`): at speed 0 nobody leaves early, so a branch
changes no answer there and its sensitivity would read 0; the branches' products stay int8.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import paddle.nn as nn

from . import quantize
from .onnx_runtime import session_options

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sensitivity:
    """One product quantized alone."""

    weight: str
    """The weight's name (the same in Paddle, the exported program and ``model.onnx``)."""
    layer: str
    """The ``nn.Linear``'s path in the model (``bert.encoder.layers.0.linear2``)."""
    mean_kl: float
    """Mean over the texts of ``KL(float32 || this product in int8)`` of the probabilities."""
    flips: int
    """Texts whose label differs from float32's."""

    def to_json(self) -> Dict[str, object]:
        return {"weight": self.weight, "layer": self.layer, "mean_kl": self.mean_kl, "flips": self.flips}


def in_backbone(path: str) -> bool:
    """Whether the sublayer at ``path`` (of an exported layer) is outside the exit loop's branches: swept."""
    return not path.startswith("branches")


def backbone_products(layer: nn.Layer) -> Dict[str, str]:
    """``{weight name: layer path}`` of every ``nn.Linear`` of ``layer`` outside its branches, in model order."""
    return {m.weight.name: path for path, m in layer.named_sublayers(include_self=True)
            if isinstance(m, nn.Linear) and in_backbone(path)}


def mean_kl(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean over texts of ``KL(reference || other)`` of two ``[texts, labels]`` probability arrays."""
    p, q = (np.clip(np.asarray(a, dtype="float64"), 1e-12, 1.0) for a in (reference, other))
    return float((p * (np.log(p) - np.log(q))).sum(axis=1).mean())


def sweep(onnx_path: str | Path, products: Dict[str, str], batches: Sequence[Tuple[np.ndarray, ...]],
          ranges: Dict[str, object], activations: str = "token", exit_loop: bool = False,
          threads: int = 0) -> List[Sensitivity]:
    """Every product of ``products`` (``{weight: layer path}``) of the float32 ``onnx_path`` quantized alone (with
    its entry of ``ranges``, as :func:`~paddle_dynafast.runtime.quantize.quantize_onnx` takes them), run over
    ``batches`` of ``(input_ids, token_type_ids, ...)`` (at speed 0 with the ``exit_loop``): most sensitive first
    (mean KL, then flips), on ``threads`` intra-op threads (0: ONNX Runtime's default, every core). In memory: no
    file is written."""
    import onnx
    import onnxruntime

    source = onnx.load(str(onnx_path))
    bits = quantize.WEIGHT_BITS[activations]
    options = session_options(threads)

    def probabilities(model_bytes: bytes) -> np.ndarray:
        session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        output = session.get_outputs()[0].name
        speed = {"speed": np.zeros([1], dtype="float32")} if exit_loop else {}
        return np.concatenate([session.run([output], {"input_ids": ids, "token_type_ids": types, **speed})[0]
                               for ids, types, *_ in batches])

    logger.info("int8 mixed precision: quantizing each of %d products alone over %d texts", len(products),
                sum(len(b[0]) for b in batches))
    reference = probabilities(source.SerializeToString())
    rows = []
    for number, (weight, path) in enumerate(products.items(), start=1):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        quantize.quantize_model(model, {weight: ranges[weight]}, activations, bits, source=str(onnx_path))
        probs = probabilities(model.SerializeToString())
        rows.append(Sensitivity(weight, path, mean_kl(reference, probs),
                                int((probs.argmax(axis=1) != reference.argmax(axis=1)).sum())))
        logger.info("sensitivity %d/%d %s: mean KL %.2e, %d flips", number, len(products), path,
                    rows[-1].mean_kl, rows[-1].flips)
    return sorted(rows, key=lambda r: (-r.mean_kl, -r.flips))


def float_products(ranking: Sequence[Sensitivity], count: int) -> List[Sensitivity]:
    """The ``count`` most sensitive of a :func:`sweep` (all of them if there are fewer)."""
    if count < 0:
        raise ValueError(f"{count} products to keep in float32: give 0 or more")
    return list(ranking[:count])


def describe(kept: Sequence[Sensitivity], swept: int) -> str:
    """One line for export.json: which products stay float32, out of how many swept."""
    if not kept:
        return "every product int8"
    return f"{len(kept)} of {swept} backbone products float32 (the most sensitive): " + ", ".join(k.layer for k in kept)
