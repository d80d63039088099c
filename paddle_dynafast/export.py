"""Export to Paddle Inference, exit loop included, and the :class:`Predictor` that runs it.

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
exit loop is inside) and ``manifest.json`` (library versions and the sha256 of
every file, checked when a :class:`Predictor` opens the directory).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import paddle

from . import artifacts

logger = logging.getLogger(__name__)

PROGRAM = "model"
EXPORT_FILE = "export.json"
MANIFEST_FILE = "manifest.json"
INPUT_NAMES = ("input_ids", "token_type_ids", "speed")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _program_files(directory: Path) -> List[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(f"{PROGRAM}."))


def export_model(model_dir: str | Path, output_dir: str | Path, width: float = 1.0, no_exit: bool = False,
                 max_seq_len: Optional[int] = None, onnx: bool = False) -> Path:
    """Write a Paddle Inference model of ``model_dir`` at ``width`` (see the module docstring).

    ``model_dir`` is a distill directory (a model with branches). With
    ``no_exit`` it may also be a finetune or supernet directory. ``onnx`` also
    writes ``model.onnx`` (:func:`to_onnx`), exit loop included.
    """
    from paddle.static import InputSpec

    from .backbone import load_classifier
    from .distill import BRANCH_FILE, DynaFastModel, available_widths
    from .flops import BertShape
    from .supernet import extract_submodel
    from .train import STAGE_FILE, versions

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    width = float(width)
    if (model_dir / BRANCH_FILE).is_file():
        model = DynaFastModel.load(model_dir)
        if width not in model.widths:
            raise ValueError(f"width {width} has no branches in {model_dir}; it has {list(model.widths)}")
        backbone, tokenizer, labels = model.at(width).backbone, model.tokenizer, model.labels
        full_config = model.backbone.config
    elif no_exit:
        loaded = load_classifier(model_dir)
        if width not in available_widths(model_dir):
            raise ValueError(f"width {width} was not trained in {model_dir}; it has {list(available_widths(model_dir))}")
        backbone = loaded.model if width == 1.0 else extract_submodel(loaded.model, loaded.model.config, width)
        tokenizer, full_config = loaded.tokenizer, loaded.model.config
        stage = model_dir / STAGE_FILE
        labels = artifacts.read_json(stage)["labels"] if stage.is_file() else [str(i) for i in range(backbone.num_labels)]
    else:
        raise FileNotFoundError(f"{model_dir} has no {BRANCH_FILE}: export the exit loop from a distill directory, "
                                "or pass no_exit=True (--no-exit) for the plain classifier")
    if max_seq_len is None:
        stage = model_dir / STAGE_FILE
        max_seq_len = artifacts.read_json(stage)["config"]["data"]["max_seq_len"] if stage.is_file() else 128

    shape = BertShape.from_config(full_config)
    ids_spec = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None, None], "int64", "token_type_ids")]
    if no_exit:
        layer, spec = Probabilities(backbone), ids_spec
    else:
        layer, spec = model.at(width), ids_spec + [InputSpec([1], "float32", "speed")]
    layer.eval()
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    with artifacts.atomic_dir(output_dir) as tmp:
        paddle.jit.save(static, str(tmp / PROGRAM))
        if onnx:
            to_onnx(tmp)
        tokenizer.save_pretrained(str(tmp))
        artifacts.write_json(tmp / EXPORT_FILE, {
            "width": width, "exit_loop": not no_exit, "num_layers": len(backbone.bert.encoder.layers),
            "labels": list(labels), "max_seq_len": int(max_seq_len), "inputs": [s.name for s in spec],
            "outputs": ["probs"] if no_exit else ["probs", "exit_layer", "uncertainty"],
            "source": str(model_dir), "full_width_shape": asdict(shape),
            "branch": None if no_exit else model.branches.describe()})
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        artifacts.write_json(tmp / MANIFEST_FILE, {"versions": versions(),
                                                   "files": {p.name: sha256(p) for p in files}})
    logger.info("exported %s at width %s (%s) -> %s", model_dir, width, "plain" if no_exit else "exit loop", output_dir)
    return output_dir


ONNX_FILE = f"{PROGRAM}.onnx"


def to_onnx(directory: str | Path, opset: int = 13) -> Path:
    """Convert the exported program in ``directory`` to ``model.onnx`` with paddle2onnx.

    Uses paddle2onnx's ``onnxoptimizer`` pass, not its default ``polygraphy``:
    paddle2onnx 2.1.0 sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` for that one, and
    polygraphy then pip-installs onnx-graphsurgeon at run time, which upgrades
    NumPy to 2 under the pinned environment.
    """
    import paddle2onnx

    directory = Path(directory)
    save = directory / ONNX_FILE
    paddle2onnx.export(str(directory / f"{PROGRAM}.json"), str(directory / f"{PROGRAM}.pdiparams"),
                       save_file=str(save), opset_version=opset, optimize_tool="onnxoptimizer")
    return save


class OnnxRunner:
    """ONNX Runtime on ``model.onnx`` of an export directory, with the :class:`Predictor`'s ``run_batch``.

    ``intra_op`` threads, no inter-op parallelism, and thread spinning off, so
    that it does not steal the cores of another runtime measured beside it.
    """

    def __init__(self, directory: str | Path, threads: int = 2):
        import onnxruntime

        self.directory = Path(directory)
        self.info = verify(self.directory)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(self.directory / ONNX_FILE), options,
                                                    providers=["CPUExecutionProvider"])

    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray, speed: float = 0.0):
        feeds = {"input_ids": input_ids, "token_type_ids": token_type_ids}
        if self.info["exit_loop"]:
            feeds["speed"] = np.array([speed], dtype="float32")
        outputs = self.session.run(None, feeds)
        if self.info["exit_loop"]:
            return outputs[0], outputs[1]
        return outputs[0], np.full(len(input_ids), self.info["num_layers"], dtype="int64")


class Probabilities(paddle.nn.Layer):
    """A classifier returning softmax probabilities ``[batch, num_labels]`` (the exported baseline)."""

    def __init__(self, backbone: paddle.nn.Layer):
        super().__init__()
        self.backbone = backbone

    def forward(self, input_ids, token_type_ids):
        return paddle.nn.functional.softmax(self.backbone(input_ids, token_type_ids=token_type_ids), axis=-1)


# ----------------------------------------------------------------------------- prediction


class ArtifactError(ValueError):
    """An export directory that is incomplete or altered; the message names the file."""


def verify(directory: str | Path) -> dict:
    """Check every file against ``manifest.json``; returns ``export.json``."""
    directory = Path(directory)
    if not (directory / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{directory} has no {MANIFEST_FILE}: not an exported model")
    manifest = artifacts.read_json(directory / MANIFEST_FILE)
    for name, digest in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing (listed in {MANIFEST_FILE})")
        if sha256(path) != digest:
            raise ArtifactError(f"{path} was altered: its sha256 differs from {MANIFEST_FILE}")
    return artifacts.read_json(directory / EXPORT_FILE)


@dataclass
class Prediction:
    """Predictions for a list of texts, in input order."""

    labels: List[str]
    label_ids: np.ndarray
    """``[texts]``"""
    probs: np.ndarray
    """``[texts, num_labels]``"""
    exit_layer: np.ndarray
    """``[texts]``: layers run (all of them without the exit loop)."""
    truncated: int
    """How many texts were longer than max_seq_len and cut."""


class Predictor:
    """Paddle Inference on an exported directory: tokenise, batch by length, run, return in input order.

    ``threads`` CPU threads; ``onednn`` uses oneDNN kernels on CPU (measured
    faster here); on a GPU build of Paddle ``device="gpu"`` runs on GPU 0.
    """

    def __init__(self, directory: str | Path, threads: int = 2, onednn: bool = True, device: str = "cpu"):
        from paddle import inference

        from .backbone import load_tokenizer

        self.directory = Path(directory)
        self.info = verify(self.directory)
        program = next((p for p in _program_files(self.directory) if p.suffix in (".json", ".pdmodel")), None)
        if program is None:
            raise ArtifactError(f"{self.directory} has no {PROGRAM}.json or {PROGRAM}.pdmodel")
        config = inference.Config(str(program), str(self.directory / f"{PROGRAM}.pdiparams"))
        if device == "gpu":
            config.enable_use_gpu(256, 0)
        elif device == "cpu":
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(threads)
            if onednn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
        else:
            raise ValueError(f"device {device!r} is not 'cpu' or 'gpu'")
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.tokenizer = load_tokenizer(self.directory)
        self.labels = self.info["labels"]

    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray, speed: float = 0.0):
        """One batch ``[batch, seq]`` through the program; returns ``(probs, exit_layer)``."""
        feeds = {"input_ids": input_ids, "token_type_ids": token_type_ids}
        if self.info["exit_loop"]:
            feeds["speed"] = np.array([speed], dtype="float32")
        for name, value in feeds.items():
            self.predictor.get_input_handle(name).copy_from_cpu(value)
        self.predictor.run()
        outputs = [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.predictor.get_output_names()]
        if self.info["exit_loop"]:
            return outputs[0], outputs[1]
        return outputs[0], np.full(len(input_ids), self.info["num_layers"], dtype="int64")

    def encode(self, texts: Sequence[str]):
        """Token ids per text and how many were truncated; empty texts are an error naming their index."""
        from .data import Example, encode

        if len(texts) == 0:
            raise ValueError("no texts to predict")
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            raise ValueError(f"text {empty[0]} is empty ({len(empty)} empty text(s) in all)")
        features = encode([Example(t, None, None, f"text {i}") for i, t in enumerate(texts)], self.tokenizer,
                          self.info["max_seq_len"])
        return features, sum(f.truncated for f in features)

    def predict(self, texts: Sequence[str], speed: float = 0.0, batch_size: int = 32) -> Prediction:
        """Labels, probabilities and exit layers of ``texts``; batches are grouped by length."""
        from .data import Collator, FeatureDataset, LengthGroupedBatchSampler
        from .exit import check_speed

        check_speed(speed)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        features, truncated = self.encode(texts)
        dataset = FeatureDataset(features)
        collate = Collator(self.tokenizer.pad_token_id)
        probs = np.zeros((len(texts), len(self.labels)), dtype="float32")
        exit_layer = np.zeros(len(texts), dtype="int64")
        for rows in LengthGroupedBatchSampler(dataset.lengths, batch_size, shuffle=False):
            batch = collate([dataset[i] for i in rows])
            p, e = self.run_batch(batch["input_ids"], batch["token_type_ids"], speed)
            probs[batch["index"]], exit_layer[batch["index"]] = p, e
        ids = probs.argmax(-1)
        return Prediction([self.labels[i] for i in ids], ids, probs, exit_layer, truncated)
