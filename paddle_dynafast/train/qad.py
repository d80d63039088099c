"""Quantization-aware distillation: a short fine-tune of the matrix products' weights with the int8 export's rounding
simulated in Paddle, toward the float32 model's own outputs (issue 22's fourth int8 lever).

The simulation is the per-token scheme of :func:`paddle_dynafast.runtime.quantize.quantize_onnx` (``"token"``), op
for op: each token's input to an ``nn.Linear`` is rounded to uint8 levels over its own (min, max), zero a level
(:func:`fake_quant_tokens`), and the weight to symmetric ``bits``-bit integers per output channel
(:func:`fake_quant_weight`, 7 bits as the export). Both keep the float32 value's gradient (the straight-through
estimator of Bengio et al. 2013: ``x + (q(x) - x).detach()``), so the weights learn to sit where their rounding
costs least. Rounding here is half away from zero, the export's half to even: the two differ only on exact ties.

:func:`distill_quantized` trains only the weights of the given ``nn.Linear`` layers (what the export quantizes;
biases, LayerNorm and embeddings stay as they are, so the trained weights can be written back into an exported
program by name) with AdamW on ``KL(float32 || fake int8)`` of every classifier's probabilities (the branches
included: their entropies decide the exits), the float32 outputs taken once, before training, from the same layer.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..runtime.quantize import WEIGHT_BITS

LEVELS = 255.0
"""uint8 activations: levels 0 to 255."""


def _straight_through(x: paddle.Tensor, rounded: paddle.Tensor) -> paddle.Tensor:
    """``rounded``'s value with ``x``'s gradient."""
    return x + (rounded - x).detach()


def fake_quant_tokens(x: paddle.Tensor) -> paddle.Tensor:
    """``x`` ``[..., in]`` rounded as the export's per-token uint8 activations: over each token's (min, max), zero
    included and a level; dequantized again, with ``x``'s gradient."""
    low = paddle.minimum(x.min(axis=-1, keepdim=True), paddle.zeros([1], x.dtype))
    high = paddle.maximum(x.max(axis=-1, keepdim=True), paddle.zeros([1], x.dtype))
    scale = paddle.clip((high - low) / LEVELS, min=1e-8)
    zero = paddle.round(-low / scale)
    levels = paddle.clip(paddle.round(x / scale) + zero, 0.0, LEVELS)
    return _straight_through(x, (levels - zero) * scale)


def fake_quant_weight(weight: paddle.Tensor, bits: int = WEIGHT_BITS["token"]) -> paddle.Tensor:
    """A ``[in, out]`` weight rounded to symmetric ``bits``-bit integers per output channel (as
    :func:`~paddle_dynafast.runtime.quantize.quantize_weight`), dequantized again, with the weight's gradient."""
    top = float(2 ** (bits - 1) - 1)
    scale = weight.abs().max(axis=0, keepdim=True) / top  # [1, out]
    scale = paddle.where(scale > 0, scale, paddle.ones_like(scale))
    return _straight_through(weight, paddle.clip(paddle.round(weight / scale), -top, top) * scale)


@contextmanager
def fake_quantized(linears: Sequence[nn.Linear], bits: int = WEIGHT_BITS["token"]) -> Iterator[None]:
    """Within the block, every layer of ``linears`` multiplies fake-quantized inputs by its fake-quantized weight."""
    def forward(x, linear):
        return F.linear(fake_quant_tokens(x), fake_quant_weight(linear.weight, bits), linear.bias)

    for linear in linears:
        linear.forward = lambda x, linear=linear: forward(x, linear)
    try:
        yield
    finally:
        for linear in linears:
            del linear.forward  # the class's forward again


def _log_probs(outputs: paddle.Tensor, are_logits: bool) -> paddle.Tensor:
    return F.log_softmax(outputs, axis=-1) if are_logits else paddle.log(paddle.clip(outputs, min=1e-12))


def distill_quantized(layer: nn.Layer, run: Callable[[paddle.Tensor, paddle.Tensor], paddle.Tensor],
                      linears: Sequence[nn.Linear], batches: Sequence[tuple], steps: int, lr: float = 1e-6,
                      bits: int = WEIGHT_BITS["token"], are_logits: bool = True,
                      progress: Callable[[int, float], None] | None = None) -> Dict[str, List[float]]:
    """Train the weights of ``linears`` (inside ``layer``, in eval mode) for ``steps`` steps over ``batches`` of
    ``(input_ids, token_type_ids)`` (cycled) so that ``run`` with fake int8 products answers as ``run`` in float32
    did before training. ``run`` gives logits (``are_logits``) or probabilities ``[batch, ..., labels]``; the loss
    is ``KL(float32 || fake int8)`` per text and classifier, averaged. Returns ``{"loss": [per step]}``; every other
    parameter of ``layer`` is left as it was."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not batches:
        raise ValueError("no batches to distill on")
    if not linears:
        raise ValueError("no nn.Linear to quantize")
    layer.eval()
    tensors = [(paddle.to_tensor(ids), paddle.to_tensor(types)) for ids, types in batches]
    with paddle.no_grad():
        targets = [_log_probs(run(ids, types), are_logits) for ids, types in tensors]
    frozen = {id(p): p.stop_gradient for p in layer.parameters()}
    weights = [linear.weight for linear in linears]
    for parameter in layer.parameters():
        parameter.stop_gradient = True
    for weight in weights:
        weight.stop_gradient = False
    optimizer = paddle.optimizer.AdamW(learning_rate=lr, parameters=weights, weight_decay=0.0)
    losses: List[float] = []
    try:
        with fake_quantized(linears, bits):
            for step in range(steps):
                number = step % len(tensors)
                ids, types = tensors[number]
                target = targets[number]
                student = _log_probs(run(ids, types), are_logits)
                loss = (target.exp() * (target - student)).sum(axis=-1).mean()
                loss.backward()
                optimizer.step()
                optimizer.clear_grad()
                losses.append(float(loss))
                if progress is not None:
                    progress(step + 1, losses[-1])
    finally:
        for parameter in layer.parameters():
            parameter.stop_gradient = frozen[id(parameter)]
    return {"loss": losses}

