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
directory, and an HMAC with a sign key; see :mod:`paddle_dynafast.runtime.manifest`).

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

from .. import atomic, data, outputs
from ..config import DataConfig, ExportConfig
from ..errors import ArtifactError, ConfigError, MissingFileError, summary
from ..model.dynafast import BRANCH_FILE, DynaFastModel
from ..model.flops import BertShape
from ..model.forward import Probabilities
from ..model.loading import check_max_seq_len, load_classifier
from ..model.narrow import extract_submodel
from ..model.stage_info import StageInfo
from . import bench, quantize, sensitivity
from .export_info import EXPORT_FILE, INT8_ONNX_FILE, ONNX_FILE, OUTPUTS, PROGRAM, read_export_json
from .manifest import read_sign_key, write_manifest
from .promise import Promise

logger = logging.getLogger(__name__)


def export_model(config: ExportConfig, overwrite: bool = False, trust_pickle: bool = False,
                 sign_key: Optional[bytes] = None, promise: Optional[Promise] = None) -> Path:
    """Write a Paddle Inference model of ``config.model_dir`` at ``config.width`` into ``config.output_dir`` (see
    the module docstring and :class:`~paddle_dynafast.config.ExportConfig`); returns the output directory.

    ``model_dir`` is a distill directory (a model with branches); with ``no_exit``
    it may also be a finetune or supernet directory. ``onnx`` also writes
    ``model.onnx`` (:func:`to_onnx`), exit loop included; ``int8`` also
    ``model.int8.onnx`` (:mod:`paddle_dynafast.runtime.quantize`), its activations
    quantized at run time per token (``int8_activations="token"``) or per
    tensor (``"dynamic"``), or with ranges
    calibrated on ``calibration_examples`` training texts of ``calibration``
    (``"static"``; default data: the one the model was trained on, from its
    ``stage.json``). ``overwrite`` replaces an earlier export in ``output_dir``;
    ``trust_pickle`` reads pickled weights of an older version. The manifest is
    signed with the secret of ``config.sign_key_file``, or with ``sign_key`` (a
    secret held in memory; not both). ``promise``, what the calibration that chose
    this width promised (:mod:`paddle_dynafast.runtime.promise`), goes into
    ``export.json``.
    """
    if sign_key is not None and config.sign_key_file:
        raise ConfigError(f"two sign keys: sign_key and sign_key_file {config.sign_key_file!r}; give one")
    if config.sign_key_file:
        sign_key = read_sign_key(config.sign_key_file)
    with outputs.claim(Path(config.output_dir), outputs.EXPORT, [Path(config.model_dir)], replace=overwrite):
        return _export(config, trust_pickle, sign_key, promise)


def _export(config: ExportConfig, trust_pickle: bool, sign_key: Optional[bytes], promise: Optional[Promise]) -> Path:
    model_dir, output_dir = Path(config.model_dir), Path(config.output_dir)
    width, no_exit = config.width, config.no_exit
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
    max_seq_len = stage.max_seq_len if config.max_seq_len is None else config.max_seq_len
    check_max_seq_len(full_config, max_seq_len, model_dir)

    shape = BertShape.from_config(full_config)
    ids_spec = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None, None], "int64", "token_type_ids")]
    if no_exit:
        layer, spec = Probabilities(backbone), ids_spec
    else:
        layer, spec = model.at(width), ids_spec + [InputSpec([1], "float32", "speed")]
    layer.eval()
    activations = config.int8_activations
    calibrates = config.int8 and (activations == "static" or config.int8_float_products > 0)  # on training texts
    if config.int8:  # in dygraph, before to_static turns the layer's forward into the static program
        batches = (_calibration_batches(stage, config.calibration, config.calibration_examples, tokenizer,
                                        max_seq_len) if calibrates else None)
        if activations != "static":
            ranges = quantize.linear_weights(layer)
        else:
            ranges = quantize.activation_ranges(layer, layer if no_exit else layer.layer_logits, batches)
        candidates = sensitivity.backbone_products(layer)
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    names = OUTPUTS[:1] if no_exit else OUTPUTS
    with atomic.atomic_dir(output_dir) as tmp:
        paddle.jit.save(static, str(tmp / PROGRAM))
        name_program_outputs(tmp / f"{PROGRAM}.json", names)
        info = {"width": width, "exit_loop": not no_exit, "num_layers": len(backbone.bert.encoder.layers),
                "labels": list(labels), "max_seq_len": int(max_seq_len), "inputs": [s.name for s in spec],
                "outputs": dict(zip(names, _program_outputs(tmp, layer))), "source": str(model_dir),
                "full_width_shape": asdict(shape), "branch": None if no_exit else model.branches.describe()}
        if config.onnx or config.int8:
            info["onnx_outputs"] = dict(zip(names, _onnx_outputs(clean_onnx(to_onnx(tmp), names))))
        if config.int8:
            kept, ranking = [], []
            if config.int8_float_products:
                ranking = sensitivity.sweep(tmp / ONNX_FILE, candidates, batches, ranges, activations, not no_exit)
                kept = sensitivity.float_products(ranking, config.int8_float_products)
                ranges = {w: r for w, r in ranges.items() if w not in {k.weight for k in kept}}
            quantized = quantize.quantize_onnx(tmp / ONNX_FILE, tmp / INT8_ONNX_FILE, ranges, activations)
            clean_onnx(tmp / INT8_ONNX_FILE, names)
            info["int8"] = {"file": INT8_ONNX_FILE, "matmuls": quantized, "activations": activations,
                            "weight_bits": quantize.WEIGHT_BITS[activations],
                            "calibration_examples": config.calibration_examples if calibrates else None,
                            "scheme": quantize.describe(activations),
                            "float_products_asked": config.int8_float_products,
                            "float_products": [k.to_json() for k in kept],
                            "sweep": [r.to_json() for r in ranking],
                            "mixed_precision": sensitivity.describe(kept, len(candidates))}
        if promise is not None:
            info["promise"] = promise.to_json()
        tokenizer.save_pretrained(str(tmp))
        atomic.write_json(tmp / EXPORT_FILE, info)
        write_manifest(tmp, sign_key, source=model_dir)
    logger.info("exported %s at width %s (%s) -> %s", model_dir, width, "plain" if no_exit else "exit loop", output_dir)
    return output_dir


def export_is_current(output_dir: str | Path, model_dir: str | Path, width: float, no_exit: bool,
                      onnx: bool = False, int8: Optional[str] = None,
                      int8_float_products: int = ExportConfig.int8_float_products) -> bool:
    """True if ``output_dir`` holds an intact export of ``model_dir`` at ``width`` made the same way: with
    ``model.onnx`` if ``onnx``, with ``model.int8.onnx`` of these activations (``"token"``, ``"dynamic"``,
    ``"static"``) if ``int8``, asked to keep ``int8_float_products`` products float32."""
    try:
        info = read_export_json(output_dir)
    except ArtifactError:  # missing or altered: export again
        return False
    # an int8 export written before dynamic activations existed is static
    made_int8 = info.get("int8") and info["int8"].get("activations", "static")
    return (info["source"] == str(model_dir) and info["width"] == float(width) and info["exit_loop"] == (not no_exit)
            and (not onnx or (Path(output_dir) / ONNX_FILE).is_file())
            and (int8 is None or (made_int8 == int8
                                  and info["int8"].get("float_products_asked", 0) == int8_float_products)))


def to_onnx(directory: str | Path, opset: int = 13) -> Path:
    """Convert the exported program in ``directory`` to ``model.onnx`` with paddle2onnx.

    Without paddle2onnx's post-conversion optimiser (ONNX Runtime optimises the
    graph itself when it loads it): its default, ``polygraphy``, makes paddle2onnx
    2.1.0 set ``POLYGRAPHY_AUTOINSTALL_DEPS=1``, and polygraphy then pip-installs
    onnx-graphsurgeon at run time, which upgrades NumPy to 2 under the pinned
    environment; its ``onnxoptimizer`` list names a pass ``"eliminate_nop_cast "``
    (trailing space) that onnxoptimizer does not know, so it always fails and
    writes the graph unchanged after a warning.
    """
    import paddle2onnx  # optional at import time: only --onnx needs it

    directory = Path(directory)
    save = directory / ONNX_FILE
    paddle2onnx.export(str(directory / f"{PROGRAM}.json"), str(directory / f"{PROGRAM}.pdiparams"),
                       save_file=str(save), opset_version=opset, optimize_tool="none")
    return save


def name_program_outputs(program: Path, names) -> None:
    """Name the outputs of a saved Paddle program (``model.json``) ``names`` (:data:`OUTPUTS`) instead of Paddle's
    ``fetch_name_0``, ``fetch_name_1``, ...: the ``name`` of its fetch operations, in their ``col`` order. Paddle
    Inference (and paddle2onnx) then report those names; the program is read back by the caller. A program Paddle
    wrote incompletely (a full disk) is an ``OSError`` saying so."""
    try:
        with open(program, encoding="utf-8") as f:
            raw = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise _incomplete(program, error) from error
    fetches = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if value.get("#") == "1.fetch":
                fetches.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(raw["program"])
    attrs = [{a["N"]: a for a in op.get("A", [])} for op in fetches]
    if len(fetches) != len(names) or any("name" not in a or "col" not in a for a in attrs):
        raise ArtifactError(f"{program} has {len(fetches)} fetch operations; the model returns {list(names)}")
    for a in attrs:
        a["name"]["AT"]["D"] = names[a["col"]["AT"]["D"]]
    with open(program, "w", encoding="utf-8") as f:  # inside the export's temporary directory
        json.dump(raw, f, separators=(",", ":"))


def clean_onnx(path: Path, names) -> Path:
    """Name the outputs of the ONNX model at ``path`` ``names`` (in order), drop every node whose outputs nothing
    uses (paddle2onnx leaves constants, ONNX Runtime warns about each when it loads the model), in the main graph
    and in the exit loop's conditional blocks, and name the dynamic sizes ``batch`` and ``seq`` (paddle2onnx's are
    ``DynamicDimension.0``, ...); written in place. Returns ``path``."""
    import onnx  # installed with paddle2onnx

    model = onnx.load(str(path))
    renames = {o.name: new for o, new in zip(model.graph.output, names) if o.name != new}
    if len(model.graph.output) != len(names):
        raise ArtifactError(f"{path} has {len(model.graph.output)} outputs; the model returns {list(names)}")
    if renames:
        _rename(model.graph, renames)
    _prune(model.graph)
    for value in [*model.graph.input, *model.graph.output]:  # the dynamic sizes named as export.json documents them
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, ("batch", "seq") if value.name in ("input_ids", "token_type_ids") else ("batch",)):
            if not dim.HasField("dim_value"):
                dim.dim_param = size
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _subgraphs(node):
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _rename(graph, renames) -> None:
    for value in [*graph.output, *graph.value_info]:
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                field[i] = renames.get(name, name)
        for sub in _subgraphs(node):
            _rename(sub, renames)


def _referenced(node) -> set:
    """The names ``node`` reads, with those its subgraphs read (from any scope)."""
    names = set(node.input)
    for sub in _subgraphs(node):
        names |= {o.name for o in sub.output}
        for inner in sub.node:
            names |= _referenced(inner)
    return names


def _prune(graph) -> None:
    for node in graph.node:
        for sub in _subgraphs(node):
            _prune(sub)
    while True:
        used = {o.name for o in graph.output}
        for node in graph.node:
            used |= _referenced(node)
        kept = [node for node in graph.node if any(name in used for name in node.output if name)]
        initializers = [t for t in graph.initializer if t.name in used]
        if len(kept) == len(graph.node) and len(initializers) == len(graph.initializer):
            return
        kept, initializers = [_copy(n) for n in kept], [_copy(t) for t in initializers]
        del graph.node[:]
        graph.node.extend(kept)
        del graph.initializer[:]
        graph.initializer.extend(initializers)


def _copy(message):
    """A detached copy of a protobuf message (one removed from its repeated field is not kept valid)."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _calibration_batches(stage: StageInfo, calibration: Optional[DataConfig], examples: int, tokenizer,
                         max_seq_len: int) -> list:
    """Batches ``(input_ids, token_type_ids, rows)`` of a seeded slice of ``examples`` training texts."""
    if calibration is None:
        data_dir = stage.config.get("data", {}).get("data_dir")
        if not data_dir or not Path(data_dir).is_dir():
            raise MissingFileError(f"{stage.directory} does not name a training data folder that exists here "
                                   f"({data_dir!r}); give the calibration data (--calibration-data)")
        calibration = stage.data_config(data_dir)
    train = data.load_splits(calibration)["train"]
    _, chosen = data.hold_out(train, min(examples, len(train) - 1), seed=calibration.split_seed)
    features = data.encode(chosen, tokenizer, max_seq_len)
    return bench.batches(features, tokenizer.pad_token_id, 32)


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
