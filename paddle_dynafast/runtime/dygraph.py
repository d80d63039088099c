"""Paddle dygraph behind the runtime interface: the model as PaddleNLP trains it, no export needed.

The reference the exported runtimes are checked against, and the baseline of a
user who deploys the PaddleNLP model as it is. With ``threads``, each batch runs
with that many CPU threads and Paddle's count is put back after it
(:func:`~paddle_dynafast.runtime.threads.paddle_threads`); building the runtime
changes nothing in the process.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from .. import files
from ..config.runtime import RuntimeName
from ..errors import ArtifactError, ConfigError
from ..model.dynafast import DynaFastModel
from ..model.flops import BertShape
from ..model.loading import load_classifier
from ..model.narrow import extract_submodel
from ..model.stage_info import StageInfo
from .base import Runtime
from .export_info import EXPORT_FILE, ExportInfo
from .manifest import verify_source
from .threads import paddle_threads


class DygraphRuntime(Runtime):
    """A stage directory at ``width`` (with the exit loop when it has branches, unless ``exit_loop=False``), or
    the source of an export directory as that export was made: the export's manifest is checked (with ``sign_key``
    its signature), then the source's model files against the sha256 the manifest recorded of them, before anything
    is loaded; with ``sign_key`` an export whose signature does not cover its source is refused, and so is a stage
    directory (it carries no signature). ``threads``: CPU threads of each batch (None: Paddle's count as it is).
    ``trust_pickle`` reads pickled weights (``.pdparams``) of an older version."""

    kind = RuntimeName.DYGRAPH

    def __init__(self, directory: str | Path, width: Optional[float] = None, exit_loop: Optional[bool] = None,
                 threads: Optional[int] = None, sign_key: Optional[bytes] = None, trust_pickle: bool = False):
        directory = Path(directory)
        if files.exists(directory / EXPORT_FILE):
            export = ExportInfo.read(directory, sign_key)
            source = Path(export.source)
            if not source.is_dir():
                raise ArtifactError(f"{directory} was exported from {source}, which is gone: dygraph needs it")
            verify_source(directory, source, signed=sign_key is not None)
            directory, width, exit_loop = source, export.width, export.exit_loop
        elif sign_key is not None:
            raise ConfigError(f"{directory} is not an export: a sign key checks an export's signature, and a stage "
                              "directory carries none; give an export directory, or no sign key")
        width = 1.0 if width is None else float(width)
        exit_loop = DynaFastModel.has_branches(directory) if exit_loop is None else exit_loop
        self.threads = threads
        stage = StageInfo.read(directory)
        branch = None
        if exit_loop:
            model = DynaFastModel.load(directory, trust_pickle=trust_pickle)
            self.adaptive = model.at(width)
            self.backbone, labels, full_config = self.adaptive.backbone, model.labels, model.backbone.config
            branch = model.branches.config
        else:
            if width not in stage.widths:
                raise ConfigError(f"width {width} was not trained in {directory}; it has {list(stage.widths)}")
            loaded = load_classifier(directory, trust_pickle=trust_pickle)
            full_config = loaded.model.config
            self.backbone = loaded.model if width == 1.0 else extract_submodel(loaded.model, full_config, width)
            labels = stage.labels_or_numbers(full_config.num_labels)
        self.backbone.eval()
        self.info = ExportInfo(directory=directory, width=width, exit_loop=exit_loop,
                               num_layers=len(self.backbone.bert.encoder.layers), labels=tuple(labels),
                               max_seq_len=stage.max_seq_len, shape=BertShape.from_config(full_config), branch=branch,
                               source=str(directory))

    @paddle.no_grad()
    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        with paddle_threads(self.threads) if self.threads is not None else contextlib.nullcontext():
            ids, types = paddle.to_tensor(input_ids), paddle.to_tensor(token_type_ids)
            if self.info.exit_loop:
                probs, exit_layer, _ = self.adaptive(ids, types, speed=speed)
                return probs.numpy(), exit_layer.numpy()
            probs = F.softmax(self.backbone(ids, token_type_ids=types), axis=-1).numpy()
        return probs, np.full(len(probs), self.info.num_layers, dtype="int64")
