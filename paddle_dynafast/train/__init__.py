"""The training side: one stage skeleton and the stages that plug into it.

:data:`STAGES` lists the training stages in pipeline order; the pipeline and the
command line build themselves from it. Each stage is a module holding only its
objective (:mod:`.finetune`, :mod:`.supernet`, :mod:`.distill`); what they
share is in :mod:`.stage` (begin or resume, finish, report) and :mod:`.loop`
(the resumable training loop). Also here: head and neuron importance, the
distillation losses, and the PaddleSlim version shims.
"""
from __future__ import annotations

from typing import Tuple, Type

from .distill import DistillStage
from .finetune import FinetuneStage
from .stage import Stage
from .supernet import SupernetStage

STAGES: Tuple[Type[Stage], ...] = (FinetuneStage, SupernetStage, DistillStage)
"""The training stages in pipeline order: each reads the previous one's directory."""
