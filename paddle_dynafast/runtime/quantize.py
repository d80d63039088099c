"""Post-training int8 quantization of the backbone's matrix products, for ONNX Runtime, exit loop included.

ONNX Runtime's own quantizers (``quantize_static``, ``quantize_dynamic``) do not
reach into the ``If`` subgraphs that hold layers 2 to 6 of the exit loop, and
they need paddle2onnx's ``Constant`` weights turned into initializers first. So
we rewrite the ONNX graph ourselves: every ``MatMul`` whose right operand is the
weight of one of the model's ``nn.Linear`` layers (:func:`linear_weights`; the
name of a weight in Paddle is also its name in the exported program and in
``model.onnx``), at any depth of the graph, gets a per-output-channel symmetric
integer copy of its weight, and its input is quantized to uint8 in one of three
ways (:data:`~paddle_dynafast.config.INT8_ACTIVATIONS`):

- **token** (the default): every token's activations over their own (min, max)
  at run time (a ``ReduceMin``/``ReduceMax`` over the last axis), so a text's
  answer never depends on the other texts of its batch, nor on its padding. The
  weights are 7-bit (``|w| <= 63``): a uint8 x int8 product on AVX2
  (``vpmaddubsw``) adds pairs in int16, which saturates past 32767 with 8-bit
  weights (255 x 127 x 2) and so depends on the CPU's instructions; with 7-bit
  weights every product is exact on every x86 CPU. ONNX Runtime's
  ``MatMulInteger`` takes no per-row zero point, so the product runs without
  one and ``zero x column sums of the weight`` is subtracted after it.
- **dynamic**: ``DynamicQuantizeLinear`` over the whole input tensor's (min,
  max) at run time, then ``MatMulInteger`` and one rescaling ``Mul``: one scale
  for the batch, so an answer changes with the texts beside it (kept to compare).
- **static**: ``QuantizeLinear``/``DequantizeLinear`` with a scale and zero
  point fixed from the smallest and largest input seen over calibration batches
  (:func:`activation_ranges`, a slice of the training data), ONNX Runtime's QDQ
  format. Batch-independent too, but fixed ranges clip what they did not see.

The attention products (both operands activations), the embeddings, LayerNorm
and softmax stay float32, as in ONNX Runtime's own recipe for transformers
(``op_types_to_quantize=["MatMul"]``, per-channel). So does every product whose weight
is not in ``ranges``: the export leaves out the few the sensitivity sweep found
int8 hurts most (mixed precision, :mod:`paddle_dynafast.runtime.sensitivity`).

Activations are quantized asymmetrically (a zero point): the input of every
FFN's second product is a GELU output, in [-0.17, max], and a symmetric int8
range would waste half its levels there.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterable, Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from ..config import INT8_ACTIVATIONS
from ..errors import ArtifactError

INT8_MAX = 127

WEIGHT_BITS = {"token": 7, "dynamic": 8, "static": 8}
"""The weights' bits with each activation scheme: 7 where the product must be exact on every CPU."""


def describe(activations: str) -> str:
    """One line saying what an int8 export with these activations does (written in its export.json)."""
    bits = WEIGHT_BITS[activations]
    over = {"token": "each token's own (min, max) at run time",
            "dynamic": "the whole input tensor's (min, max) at run time",
            "static": "their calibrated (min, max)"}[activations]
    return f"weights {bits}-bit symmetric per output channel; activations uint8 over {over}"


def linear_weights(layer: nn.Layer) -> Dict[str, None]:
    """``{weight name: None}`` of every ``nn.Linear`` in ``layer``: what :func:`quantize_onnx` quantizes
    dynamically."""
    return {m.weight.name: None for m in layer.sublayers(include_self=True) if isinstance(m, nn.Linear)}


@paddle.no_grad()
def activation_ranges(layer: nn.Layer, run: Callable[[np.ndarray, np.ndarray], object],
                      batches: Iterable) -> Dict[str, Tuple[float, float]]:
    """``{weight name: (min, max) of the input}`` of every ``nn.Linear`` in ``layer`` while
    ``run(input_ids, token_type_ids)`` goes over ``batches`` of ``(input_ids, token_type_ids, ...)``."""
    ranges: Dict[str, Tuple[float, float]] = {}
    handles = []
    for linear in (m for m in layer.sublayers(include_self=True) if isinstance(m, nn.Linear)):
        def record(module, inputs, name=linear.weight.name):
            low, high = ranges.get(name, (0.0, 0.0))
            ranges[name] = (min(low, float(inputs[0].min())), max(high, float(inputs[0].max())))
        handles.append(linear.register_forward_pre_hook(record))
    try:
        layer.eval()
        for ids, types, *_ in batches:
            run(paddle.to_tensor(ids), paddle.to_tensor(types))
    finally:
        for handle in handles:
            handle.remove()
    if not ranges:
        raise ValueError(f"{type(layer).__name__} has no nn.Linear to calibrate")
    return ranges


def quantize_weight(weight: np.ndarray, bits: int = 8) -> tuple:
    """Symmetric ``bits``-bit integers per output channel of a ``[in, out]`` weight, stored as int8:
    ``(int8 [in, out], scale [out])``, ``|q| <= 2 ** (bits - 1) - 1``."""
    if not 2 <= bits <= 8:
        raise ValueError(f"{bits}-bit weights: between 2 and 8 bits fit int8")
    top = 2 ** (bits - 1) - 1
    scale = np.abs(weight).max(axis=0) / top  # [out]
    scale = np.where(scale > 0, scale, 1.0).astype("float32")
    return np.clip(np.round(weight / scale), -top, top).astype("int8"), scale


def activation_scale(span) -> tuple:
    """``(scale, zero point)`` of an activation: symmetric int8 for ``max |x|``, asymmetric uint8 for a
    ``(min, max)`` pair (zero exactly representable)."""
    if isinstance(span, (tuple, list)):
        low, high = min(float(span[0]), 0.0), max(float(span[1]), 0.0)
        scale = max(high - low, 1e-8) / 255
        return scale, np.array(int(np.clip(round(-low / scale), 0, 255)), dtype="uint8")
    return max(float(span), 1e-8) / INT8_MAX, np.array(0, dtype="int8")


def quantize_onnx(source: str | Path, target: str | Path, ranges: Dict[str, object],
                  activations: str = INT8_ACTIVATIONS[0], weight_bits: Optional[int] = None) -> int:
    """Write ``target``: ``source`` with every matrix product by a weight named in ``ranges`` in int8 (see the
    module docstring): with ``activations="static"`` each weight's input range (``(min, max)``, or ``max |x|`` for
    symmetric int8), otherwise ranges taken at run time, per token or per tensor (``ranges``' values unused).
    ``weight_bits`` (2 to 8) overrides the scheme's :data:`WEIGHT_BITS`, to measure another choice (8-bit weights
    per token are not exact on AVX2, see the module docstring). Returns how many products were quantized; when no
    ``MatMul`` uses any weight of ``ranges`` it is an error (the names do not match the program)."""
    if activations not in INT8_ACTIVATIONS:
        raise ValueError(f"activations {activations!r} is not one of {', '.join(INT8_ACTIVATIONS)}")
    bits = WEIGHT_BITS[activations] if weight_bits is None else weight_bits
    if not 2 <= bits <= 8:
        raise ValueError(f"{bits}-bit weights: between 2 and 8 bits fit int8")
    import onnx  # installed with paddle2onnx

    model = onnx.load(str(source))
    done = quantize_model(model, ranges, activations, bits, source=str(source))
    onnx.save(model, str(target))
    return done


def quantize_model(model, ranges: Dict[str, object], activations: str, bits: int, source: str = "the model") -> int:
    """:func:`quantize_onnx` on an ``onnx.ModelProto`` in memory (changed in place): the ``bits``-bit weights of every
    product by a weight of ``ranges``, their inputs quantized by ``activations``. Returns how many products."""
    import onnx
    from onnx import numpy_helper

    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    done, used = 0, set()

    def rewrite(graph) -> None:
        nonlocal done
        nodes = []
        for node in graph.node:
            for attribute in node.attribute:  # the If subgraphs of the exit loop
                if attribute.type == onnx.AttributeProto.GRAPH:
                    rewrite(attribute.g)
            weight_name = node.input[1] if node.op_type == "MatMul" else None
            if weight_name not in ranges or weight_name not in constants:
                nodes.append(node)
                continue
            weight = numpy_helper.to_array(constants[weight_name].attribute[0].t)
            if weight.ndim != 2:
                nodes.append(node)
                continue
            quantized, scale = quantize_weight(weight, bits)
            tag = f"{node.name}.q"
            graph.initializer.extend([
                numpy_helper.from_array(quantized, f"{tag}.w"), numpy_helper.from_array(scale, f"{tag}.w_scale"),
                numpy_helper.from_array(np.zeros_like(scale, dtype="int8"), f"{tag}.w_zero")])
            if activations == "token":
                nodes += _per_token(graph, node, tag, quantized)
            elif activations == "dynamic":
                nodes += _dynamic(node, tag)
            else:
                nodes += _static(graph, node, tag, ranges[weight_name])
            used.add(weight_name)
            done += 1
        del graph.node[:]
        graph.node.extend(nodes)

    rewrite(model.graph)
    unused = sorted(set(ranges) - used)
    if unused and not used:
        raise ArtifactError(f"{source}: no MatMul uses the weights to quantize (e.g. {unused[:3]}); "
                            "the ONNX model was not converted from this program")
    still_needed = {name for graph in _graphs(model.graph) for n in graph.node for name in n.input}
    kept = [n for n in model.graph.node if not (n.op_type == "Constant" and n.output[0] not in still_needed)]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return done


def _per_token(graph, node, tag: str, weight: np.ndarray) -> list:
    """``node``'s input quantized at run time to uint8 over each token's own range (zero a level), an integer
    product without zero point, the zero point's share (``zero x column sums of the weight``) taken off, one
    rescaling by the token's scale and the weight's.

    The tokens are flattened to rows (``[tokens, in]``) so that one ``QuantizeLinear`` with a scale and zero
    point per row (``axis=0``) does the division, rounding (half to even), shift and clipping in one kernel:
    the same levels as ``Round(x / scale) + zero`` clipped to [0, 255], 12 % more texts/s than those five
    operators on SST-2's teacher (AMD EPYC, 2 threads, batch 32)."""
    from onnx import TensorProto, helper, numpy_helper
    inputs, outputs = weight.shape
    graph.initializer.extend([
        numpy_helper.from_array(weight.astype("int64").sum(axis=0).astype("float32"), f"{tag}.w_sums"),
        numpy_helper.from_array(np.array(255.0, "float32"), f"{tag}.top"),
        numpy_helper.from_array(np.array(0.0, "float32"), f"{tag}.zero_f"),
        numpy_helper.from_array(np.array(1e-8, "float32"), f"{tag}.tiny"),
        numpy_helper.from_array(np.array([-1, inputs], "int64"), f"{tag}.rows_shape"),
        numpy_helper.from_array(np.array([outputs], "int64"), f"{tag}.outputs"),
        numpy_helper.from_array(np.array([0], "int64"), f"{tag}.first"),
        numpy_helper.from_array(np.array([-1], "int64"), f"{tag}.last")])

    def op(kind, inputs, output, **attributes):
        return helper.make_node(kind, inputs, [f"{tag}.{output}"], name=f"{tag}.{output}", **attributes)

    x = node.input[0]
    return [
        op("Shape", [x], "shape"),
        op("Slice", [f"{tag}.shape", f"{tag}.first", f"{tag}.last"], "leading"),  # [batch, tokens]
        op("Concat", [f"{tag}.leading", f"{tag}.outputs"], "out_shape", axis=0),
        op("Reshape", [x, f"{tag}.rows_shape"], "rows"),  # [tokens, in]
        op("ReduceMin", [f"{tag}.rows"], "low0", axes=[-1], keepdims=0),  # [tokens]: each token's range, zero in it
        op("ReduceMax", [f"{tag}.rows"], "high0", axes=[-1], keepdims=0),
        op("Min", [f"{tag}.low0", f"{tag}.zero_f"], "low"),
        op("Max", [f"{tag}.high0", f"{tag}.zero_f"], "high"),
        op("Sub", [f"{tag}.high", f"{tag}.low"], "span"),
        op("Div", [f"{tag}.span", f"{tag}.top"], "a_scale0"),
        op("Max", [f"{tag}.a_scale0", f"{tag}.tiny"], "a_scale"),  # an all-zero token: any scale, all zeros
        op("Div", [f"{tag}.low", f"{tag}.a_scale"], "low_levels"),
        op("Neg", [f"{tag}.low_levels"], "minus_low"),
        op("Round", [f"{tag}.minus_low"], "a_zero_f"),  # in [0, 255]: low <= 0 <= high
        op("Cast", [f"{tag}.a_zero_f"], "a_zero", to=TensorProto.UINT8),
        op("QuantizeLinear", [f"{tag}.rows", f"{tag}.a_scale", f"{tag}.a_zero"], "a_q", axis=0),
        op("MatMulInteger", [f"{tag}.a_q", f"{tag}.w"], "product"),
        op("Cast", [f"{tag}.product"], "product_float", to=TensorProto.FLOAT),
        op("Unsqueeze", [f"{tag}.a_zero_f", f"{tag}.last"], "a_zero_column"),
        op("Mul", [f"{tag}.a_zero_column", f"{tag}.w_sums"], "zero_share"),
        op("Sub", [f"{tag}.product_float", f"{tag}.zero_share"], "centred"),
        op("Unsqueeze", [f"{tag}.a_scale", f"{tag}.last"], "a_scale_column"),
        op("Mul", [f"{tag}.a_scale_column", f"{tag}.w_scale"], "scale"),  # [tokens, out]
        op("Mul", [f"{tag}.centred", f"{tag}.scale"], "product_rows"),
        helper.make_node("Reshape", [f"{tag}.product_rows", f"{tag}.out_shape"], list(node.output), name=node.name)]


def _dynamic(node, tag: str) -> list:
    """``node``'s input quantized at run time over the whole tensor's range, an integer product, one rescaling."""
    from onnx import TensorProto, helper
    return [
        helper.make_node("DynamicQuantizeLinear", [node.input[0]], [f"{tag}.a_q", f"{tag}.a_scale", f"{tag}.a_zero"],
                         name=f"{tag}.quantize"),
        helper.make_node("MatMulInteger", [f"{tag}.a_q", f"{tag}.w", f"{tag}.a_zero", f"{tag}.w_zero"],
                         [f"{tag}.product"], name=f"{tag}.matmul"),
        helper.make_node("Cast", [f"{tag}.product"], [f"{tag}.product_float"], name=f"{tag}.cast", to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{tag}.a_scale", f"{tag}.w_scale"], [f"{tag}.scale"], name=f"{tag}.scale"),
        helper.make_node("Mul", [f"{tag}.product_float", f"{tag}.scale"], list(node.output), name=node.name)]


def _static(graph, node, tag: str, span) -> list:
    """``node``'s input quantized with the scale and zero point of its calibrated ``span`` (QDQ)."""
    from onnx import helper, numpy_helper
    act_scale, act_zero = activation_scale(span)
    graph.initializer.extend([numpy_helper.from_array(np.array(act_scale, dtype="float32"), f"{tag}.a_scale"),
                              numpy_helper.from_array(act_zero, f"{tag}.a_zero")])
    return [
        helper.make_node("QuantizeLinear", [node.input[0], f"{tag}.a_scale", f"{tag}.a_zero"], [f"{tag}.a_q"],
                         name=f"{tag}.quantize"),
        helper.make_node("DequantizeLinear", [f"{tag}.a_q", f"{tag}.a_scale", f"{tag}.a_zero"],
                         [f"{tag}.a_dq"], name=f"{tag}.dequantize_a"),
        helper.make_node("DequantizeLinear", [f"{tag}.w", f"{tag}.w_scale", f"{tag}.w_zero"], [f"{tag}.w_dq"],
                         name=f"{tag}.dequantize_w", axis=1),
        helper.make_node("MatMul", [f"{tag}.a_dq", f"{tag}.w_dq"], list(node.output), name=node.name)]


def _graphs(graph):
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == __import__("onnx").AttributeProto.GRAPH:
                yield from _graphs(attribute.g)
