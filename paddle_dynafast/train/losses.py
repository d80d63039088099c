"""Distillation losses, as small functions tested against NumPy.

* :func:`soft_cross_entropy`: DynaBERT's logit distillation (arXiv 2004.04037,
  eq. 2), ``-sum softmax(teacher) * log_softmax(student)``, averaged over the batch.
* :func:`kl_divergence`: FastBERT's self-distillation (arXiv 2004.02178, eq. 6),
  ``KL(student || teacher) = sum p_s (log p_s - log p_t)``, averaged over the batch.
"""
from __future__ import annotations

import paddle
import paddle.nn.functional as F


def soft_cross_entropy(student_logits: paddle.Tensor, teacher_logits: paddle.Tensor) -> paddle.Tensor:
    """Cross-entropy of student logits ``[batch, classes]`` against the teacher's soft labels (no gradient to them)."""
    target = F.softmax(teacher_logits.detach(), axis=-1)
    return -(target * F.log_softmax(student_logits, axis=-1)).sum(axis=-1).mean()


def kl_divergence(student_logits: paddle.Tensor, teacher_logits: paddle.Tensor) -> paddle.Tensor:
    """``KL(p_student || p_teacher)`` per sample, averaged over the batch; the teacher gets no gradient.

    FastBERT writes the divergence with the student first (eq. 6); note that this
    is the reverse of the ``KL(teacher || student)`` of ordinary distillation.
    """
    log_s = F.log_softmax(student_logits, axis=-1)
    log_t = F.log_softmax(teacher_logits.detach(), axis=-1)
    return (log_s.exp() * (log_s - log_t)).sum(axis=-1).mean()
