"""Distillation losses, as small functions tested against NumPy.

* :func:`soft_cross_entropy`: DynaBERT's logit distillation (arXiv 2004.04037,
  eq. 2), ``-sum softmax(teacher) * log_softmax(student)``, averaged over the batch.
* :func:`kl_divergence`: FastBERT's self-distillation (arXiv 2004.02178, eq. 6),
  ``KL(student || teacher) = sum p_s (log p_s - log p_t)``, averaged over the batch;
  with a temperature ``T`` both distributions are ``softmax(logits / T)`` and the
  divergence is multiplied by ``T^2`` (Hinton et al. 2015, so that gradients keep
  their scale as ``T`` changes); FastBERT itself uses ``T = 1``.
* :func:`labelled_cross_entropy`: cross-entropy to gold labels over the rows that
  have one (label >= 0; unlabelled and augmented text carries -1).
"""
from __future__ import annotations

import paddle
import paddle.nn.functional as F


def soft_cross_entropy(student_logits: paddle.Tensor, teacher_logits: paddle.Tensor) -> paddle.Tensor:
    """Cross-entropy of student logits ``[batch, classes]`` against the teacher's soft labels (no gradient to them)."""
    target = F.softmax(teacher_logits.detach(), axis=-1)
    return -(target * F.log_softmax(student_logits, axis=-1)).sum(axis=-1).mean()


def kl_divergence(student_logits: paddle.Tensor, teacher_logits: paddle.Tensor,
                  temperature: float = 1.0) -> paddle.Tensor:
    """``T^2 KL(softmax(s / T) || softmax(t / T))`` per sample, averaged over the batch; the teacher gets no gradient.

    FastBERT writes the divergence with the student first (eq. 6); note that this
    is the reverse of the ``KL(teacher || student)`` of ordinary distillation.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_s = F.log_softmax(student_logits / temperature, axis=-1)
    log_t = F.log_softmax(teacher_logits.detach() / temperature, axis=-1)
    return (log_s.exp() * (log_s - log_t)).sum(axis=-1).mean() * temperature ** 2


def labelled_cross_entropy(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """Cross-entropy of ``logits`` ``[batch, classes]`` to ``labels`` ``[batch]``, averaged over the rows whose label
    is >= 0 (unlabelled rows carry -1); 0 when no row has a label."""
    known = labels >= 0
    per_row = F.cross_entropy(logits, paddle.where(known, labels, paddle.zeros_like(labels)), reduction="none")
    mask = known.astype(per_row.dtype).reshape(per_row.shape)
    return (per_row * mask).sum() / paddle.clip(mask.sum(), min=1.0)
