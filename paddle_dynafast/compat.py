"""Version shims for PaddleNLP 2.8.1 and PaddleSlim 2.6.0 on the pinned Paddle.

Every shim here:

* names the upstream break it works around;
* is applied explicitly, to the model instance that needs it (never at import,
  never to a class);
* raises when it matches nothing, so a shim that has become useless is noticed;
* has a test in ``tests/test_compat.py`` showing the break without it.

Not a shim, but the same family: PaddleNLP's ``BertModel.forward`` reads
``self.pooler.dense.weight.dtype``, which no longer exists once PaddleSlim's
``Convert`` has wrapped the pooler in a ``Block``; the head-mask forward of
:mod:`paddle_dynafast.backbone` does not read it, so supernets run through that.
"""
from __future__ import annotations

import types

import paddle
import paddle.nn.functional as F


def _super_layer_norm_forward(self, input):  # input: [..., features]
    features = int(input.shape[-1])
    weight = None if self.weight is None else self.weight[:features]
    bias = None if self.bias is None else self.bias[:features]
    self.cur_config = {"prune_dim": features}
    return F.layer_norm(input, [features], weight=weight, bias=bias, epsilon=self._epsilon)


def fix_super_layer_norms(model: paddle.nn.Layer) -> int:
    """Replace the forward of every PaddleSlim ``SuperLayerNorm`` inside ``model``; returns how many.

    Upstream break: PaddleSlim 2.6.0 ``SuperLayerNorm.forward`` does
    ``out, _, _ = paddle._C_ops.layer_norm(...)``, but since Paddle 3.0 that op
    returns the output alone ("ValueError: too many values to unpack"). The
    replacement keeps the PaddleSlim semantics (use the first ``features``
    entries of weight and bias, record ``cur_config``) through the public
    ``F.layer_norm``, which also works under ``paddle.jit.to_static``.
    """
    from paddleslim.nas.ofa.layers import SuperLayerNorm

    norms = [layer for layer in model.sublayers(include_self=True) if isinstance(layer, SuperLayerNorm)]
    if not norms:
        raise ValueError(f"fix_super_layer_norms matched no SuperLayerNorm inside {type(model).__name__}")
    for norm in norms:
        object.__setattr__(norm, "forward", types.MethodType(_super_layer_norm_forward, norm))
    return len(norms)
