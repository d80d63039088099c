"""Export to Paddle Inference (and ONNX), exit loop included.

``paddle.jit.to_static`` traces :class:`~paddle_dynafast.exit.AdaptiveClassifier`
with named inputs ``input_ids`` and ``token_type_ids`` (``[None, None]`` int64)
and ``speed`` (``[1]`` float32), so one artifact serves every speed. The layer
loop is unrolled; every layer after the first sits in a conditional block that
runs only while some sample is still in the batch, and samples leave by a
gather, exactly as in dygraph. ``no_exit`` exports the plain fixed-width
classifier instead (what PaddleNLP's ``export_model.py`` does), the baseline of
the benchmarks.

The directory holds ``model.json``/``model.pdiparams`` (Paddle 3's PIR format),
the tokenizer, ``export.json`` (width, layers, labels, max_seq_len, whether the
exit loop is inside, the program's output names) and ``manifest.json`` (library
versions and the sha256 of every file, checked when a runtime opens the
directory, and an HMAC with a sign key; see :mod:`paddle_dynafast.runtime.base`).

The output is claimed first (:func:`paddle_dynafast.outputs.claim`): never the
model directory or a directory holding it, never a directory that is not an
export, an earlier export only with ``overwrite``. The new directory replaces
the old one only once it is complete, with the user's umask. Paddle writes a
program on a full disk without an error; what it wrote is read back, and an
incomplete file is an ``OSError`` saying so.
"""
from __future__ import annotations

import errno
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import paddle
from paddle import inference
from paddle.static import InputSpec

from .. import artifacts, outputs
from ..errors import ArtifactError, ConfigError, MissingFileError, summary
from ..model.backbone import check_max_seq_len, load_classifier
from ..model.dynafast import BRANCH_FILE, DynaFastModel
from ..model.flops import BertShape
from ..model.narrow import extract_submodel
from ..model.stage import StageInfo
from .base import EXPORT_FILE, ONNX_FILE, OUTPUTS, PROGRAM, verify, write_manifest

logger = logging.getLogger(__name__)


def export_model(model_dir: str | Path, output_dir: str | Path, width: float = 1.0, no_exit: bool = False,
                 max_seq_len: Optional[int] = None, onnx: bool = False, overwrite: bool = False,
                 trust_pickle: bool = False, sign_key: Optional[bytes] = None) -> Path:
    """Write a Paddle Inference model of ``model_dir`` at ``width`` (see the module docstring).

    ``model_dir`` is a distill directory (a model with branches). With
    ``no_exit`` it may also be a finetune or supernet directory. ``onnx`` also
    writes ``model.onnx`` (:func:`to_onnx`), exit loop included. ``overwrite``
    replaces an earlier export in ``output_dir``; ``trust_pickle`` reads pickled
    weights of an older version; ``sign_key`` signs the manifest.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    with outputs.claim(output_dir, outputs.EXPORT, [model_dir], replace=overwrite):
        return _export(model_dir, output_dir, float(width), no_exit, max_seq_len, onnx, trust_pickle, sign_key)


def _export(model_dir: Path, output_dir: Path, width: float, no_exit: bool, max_seq_len: Optional[int], onnx: bool,
            trust_pickle: bool, sign_key: Optional[bytes]) -> Path:
    stage = StageInfo.read(model_dir)
    if DynaFastModel.has_branches(model_dir):
        model = DynaFastModel.load(model_dir, trust_pickle=trust_pickle)
        if width not in model.widths:
            raise ConfigError(f"width {width} has no branches in {model_dir}; it has {list(model.widths)}")
        backbone, tokenizer, labels = model.at(width).backbone, model.tokenizer, model.labels
        full_config = model.backbone.config
    elif no_exit:
        if width not in stage.widths:
            raise ConfigError(f"width {width} was not trained in {model_dir}; it has {list(stage.widths)}")
        loaded = load_classifier(model_dir, trust_pickle=trust_pickle)
        backbone = loaded.model if width == 1.0 else extract_submodel(loaded.model, loaded.model.config, width)
        tokenizer, full_config = loaded.tokenizer, loaded.model.config
        labels = stage.labels_or_numbers(backbone.num_labels)
    else:
        raise MissingFileError(f"{model_dir} has no {BRANCH_FILE}: export the exit loop from a distill directory, "
                               "or pass no_exit=True (--no-exit) for the plain classifier")
    if max_seq_len is None:
        max_seq_len = stage.max_seq_len
    check_max_seq_len(full_config, max_seq_len, model_dir)

    shape = BertShape.from_config(full_config)
    ids_spec = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None, None], "int64", "token_type_ids")]
    if no_exit:
        layer, spec = Probabilities(backbone), ids_spec
    else:
        layer, spec = model.at(width), ids_spec + [InputSpec([1], "float32", "speed")]
    layer.eval()
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    names = OUTPUTS[:1] if no_exit else OUTPUTS
    with artifacts.atomic_dir(output_dir) as tmp:
        paddle.jit.save(static, str(tmp / PROGRAM))
        info = {"width": width, "exit_loop": not no_exit, "num_layers": len(backbone.bert.encoder.layers),
                "labels": list(labels), "max_seq_len": int(max_seq_len), "inputs": [s.name for s in spec],
                "outputs": dict(zip(names, _program_outputs(tmp, layer))), "source": str(model_dir),
                "full_width_shape": asdict(shape), "branch": None if no_exit else model.branches.describe()}
        if onnx:
            info["onnx_outputs"] = dict(zip(names, _onnx_outputs(to_onnx(tmp))))
        tokenizer.save_pretrained(str(tmp))
        artifacts.write_json(tmp / EXPORT_FILE, info)
        write_manifest(tmp, sign_key)
    logger.info("exported %s at width %s (%s) -> %s", model_dir, width, "plain" if no_exit else "exit loop", output_dir)
    return output_dir


def export_is_current(output_dir: str | Path, model_dir: str | Path, width: float, no_exit: bool,
                      onnx: bool = False) -> bool:
    """True if ``output_dir`` holds an intact export of ``model_dir`` at ``width`` made the same way."""
    try:
        info = verify(output_dir)
    except ArtifactError:  # missing or altered: export again
        return False
    return (info["source"] == str(model_dir) and info["width"] == float(width) and info["exit_loop"] == (not no_exit)
            and (not onnx or (Path(output_dir) / ONNX_FILE).is_file()))


def to_onnx(directory: str | Path, opset: int = 13) -> Path:
    """Convert the exported program in ``directory`` to ``model.onnx`` with paddle2onnx.

    Uses paddle2onnx's ``onnxoptimizer`` pass, not its default ``polygraphy``:
    paddle2onnx 2.1.0 sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` for that one, and
    polygraphy then pip-installs onnx-graphsurgeon at run time, which upgrades
    NumPy to 2 under the pinned environment.
    """
    import paddle2onnx  # optional at import time: only --onnx needs it

    directory = Path(directory)
    save = directory / ONNX_FILE
    paddle2onnx.export(str(directory / f"{PROGRAM}.json"), str(directory / f"{PROGRAM}.pdiparams"),
                       save_file=str(save), opset_version=opset, optimize_tool="onnxoptimizer")
    return save


class Probabilities(paddle.nn.Layer):
    """A classifier returning softmax probabilities ``[batch, num_labels]`` (the exported baseline)."""

    def __init__(self, backbone: paddle.nn.Layer):
        super().__init__()
        self.backbone = backbone

    def forward(self, input_ids, token_type_ids):
        return paddle.nn.functional.softmax(self.backbone(input_ids, token_type_ids=token_type_ids), axis=-1)


def _program_outputs(directory: Path, layer: paddle.nn.Layer) -> list:
    """The output names of the program just saved in ``directory``, in order, as Paddle Inference reports them.

    Reading the program back is also the check that Paddle wrote it whole: ``paddle.jit.save`` does not report a
    full disk or a file-size limit, it leaves a truncated file, which is an ``OSError`` here.
    """
    program, params = directory / f"{PROGRAM}.json", directory / f"{PROGRAM}.pdiparams"
    try:
        with open(program, encoding="utf-8") as f:
            json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise _incomplete(program, error) from error
    config = inference.Config(str(program), str(params))
    config.disable_glog_info()
    try:
        return list(inference.create_predictor(config).get_output_names())
    except Exception as error:
        weights = sum(int(np.prod(p.shape)) * p.element_size() for p in layer.parameters())
        if params.stat().st_size < weights or shutil.disk_usage(directory).free < 1 << 20:
            raise _incomplete(params, error) from error
        raise


def _incomplete(path: Path, error: Exception) -> OSError:
    return OSError(errno.EIO, f"{path} was written incompletely ({path.stat().st_size} bytes, {summary(error)}): is "
                              f"the disk full ({shutil.disk_usage(path.parent).free} bytes free) or a file-size limit "
                              "set?")


def _onnx_outputs(path: Path) -> list:
    import onnx  # installed with paddle2onnx

    return [output.name for output in onnx.load(str(path), load_external_data=False).graph.output]
