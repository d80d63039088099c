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
:mod:`paddle_dynafast.model.forward` does not read it, so supernets run through that.
"""
from __future__ import annotations

import contextlib
import types
from typing import Iterator

import paddle
import paddle.nn.functional as F


@contextlib.contextmanager
def paddleslim_constructors() -> Iterator[None]:
    """While active, PaddleSlim's ``SuperEmbedding`` and ``SuperLayerNorm`` pass their arguments by keyword.

    Upstream break: PaddleSlim 2.6.0 builds them with
    ``super().__init__(num_embeddings, embedding_dim, padding_idx, sparse, weight_attr, name)``
    and ``super().__init__(normalized_shape, epsilon, weight_attr, bias_attr, name)``.
    Paddle 3.2 made ``nn.Embedding``'s arguments after ``norm_type`` keyword-only
    ("Embedding.__init__() takes from 3 to 6 positional arguments but 7 were
    given", so ``Convert`` fails); Paddle 3.3 did the same to ``nn.LayerNorm``
    after ``epsilon``; on Paddle 3.0 and 3.1 the positional call binds ``sparse``
    to ``max_norm`` and ``weight_attr`` to ``norm_type``. Constructors cannot be
    patched per instance, so the two classes are patched for the duration of
    the block only (wrap ``Convert(...).convert(...)`` in it) and restored in
    ``finally``.
    """
    from paddleslim.nas.ofa.layers import SuperEmbedding, SuperLayerNorm  # see paddle_dynafast.train.supernet

    def embedding_init(self, num_embeddings, embedding_dim, candidate_config=None, padding_idx=None, sparse=False,
                       weight_attr=None, name=None):
        # PaddleSlim's signature, but its shared default ``candidate_config={}`` is a new dict per layer here
        candidate_config = {} if candidate_config is None else candidate_config
        paddle.nn.Embedding.__init__(self, num_embeddings, embedding_dim, padding_idx=padding_idx, sparse=sparse,
                                     weight_attr=weight_attr, name=name)
        # the rest as in PaddleSlim 2.6.0 SuperEmbedding.__init__
        self.candidate_config = candidate_config
        self.cur_config = None
        self.expand_ratio = candidate_config.get("expand_ratio")
        self.base_output_dim = self._embedding_dim
        if self.expand_ratio is not None:
            self.base_output_dim = int(self._embedding_dim / max(self.expand_ratio))

    def layer_norm_init(self, normalized_shape, epsilon=1e-05, weight_attr=None, bias_attr=None, name=None):
        paddle.nn.LayerNorm.__init__(self, normalized_shape, epsilon=epsilon, weight_attr=weight_attr,
                                     bias_attr=bias_attr, name=name)
        self.cur_config = None

    saved = [(SuperEmbedding, SuperEmbedding.__dict__["__init__"]), (SuperLayerNorm, SuperLayerNorm.__dict__["__init__"])]
    try:
        SuperEmbedding.__init__ = embedding_init
        SuperLayerNorm.__init__ = layer_norm_init
        yield
    finally:
        for cls, init in saved:
            cls.__init__ = init


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
    from paddleslim.nas.ofa.layers import SuperLayerNorm  # see paddle_dynafast.train.supernet
    norms = [layer for layer in model.sublayers(include_self=True) if isinstance(layer, SuperLayerNorm)]
    if not norms:
        raise ValueError(f"fix_super_layer_norms matched no SuperLayerNorm inside {type(model).__name__}")
    for norm in norms:
        object.__setattr__(norm, "forward", types.MethodType(_super_layer_norm_forward, norm))
    return len(norms)
