"""Tiny random BERTs, a NumPy reference forward, small data sets, and a recording runtime for the tests."""
from __future__ import annotations

import json
import random
import shutil
import threading
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from scipy.special import erf

from paddle_dynafast.runtime.base import Runtime

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["good", "bad"] + [f"w{i}" for i in range(92)]
VOCAB = SPECIALS + WORDS  # 99 tokens
WIDTHS = (1.0, 0.75, 0.5, 0.25)
TINY = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
            layer_norm_eps=1e-12, pad_token_id=0, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def tiny_hf_weights(seed: int = 0, config: Dict = TINY, num_labels: Optional[int] = None,
                    scale: float = 0.2) -> Dict[str, np.ndarray]:
    """Random weights under Hugging Face BertModel names and layouts (Linear weights [out, in])."""
    rng = np.random.default_rng(seed)
    h, i = config["hidden_size"], config["intermediate_size"]

    def w(*shape):
        return (rng.standard_normal(shape) * scale).astype("float32")

    out = {
        "embeddings.word_embeddings.weight": w(config["vocab_size"], h),
        "embeddings.position_embeddings.weight": w(config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": w(config["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": 1 + w(h), "embeddings.LayerNorm.bias": w(h),
        "embeddings.position_ids": np.arange(config["max_position_embeddings"], dtype="int64")[None],
        "pooler.dense.weight": w(h, h), "pooler.dense.bias": w(h),
    }
    for n in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{n}."
        for name, shape in [("attention.self.query", (h, h)), ("attention.self.key", (h, h)),
                            ("attention.self.value", (h, h)), ("attention.output.dense", (h, h)),
                            ("intermediate.dense", (i, h)), ("output.dense", (h, i))]:
            out[p + name + ".weight"] = w(*shape)
            out[p + name + ".bias"] = w(shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            out[p + name + ".weight"] = 1 + w(h)
            out[p + name + ".bias"] = w(h)
    if num_labels:
        out = {("bert." + k): v for k, v in out.items()}
        out["classifier.weight"] = w(num_labels, h)
        out["classifier.bias"] = w(num_labels)
    return out


def write_hf_dir(path: Path, weights: Dict[str, np.ndarray], config: Dict = TINY, vocab=VOCAB) -> Path:
    """A Hugging Face-format BERT directory: config.json, model.safetensors, vocab.txt."""
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"], **config}))
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    save_file(weights, str(path / "model.safetensors"))
    return path


def _layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def numpy_bert(w: Dict[str, np.ndarray], input_ids: np.ndarray, config: Dict = TINY, head_mask=None,
               token_type_ids=None, eps: Optional[float] = None):
    """Reference BERT forward in NumPy on Hugging Face weights; returns (sequence, pooled, logits or None)."""
    w = {k[len("bert."):] if k.startswith("bert.") else k: v.astype("float64") for k, v in w.items()}
    eps = config["layer_norm_eps"] if eps is None else eps
    batch, seq = input_ids.shape
    heads = config["num_attention_heads"]
    d = config["hidden_size"] // heads
    tt = np.zeros_like(input_ids) if token_type_ids is None else token_type_ids
    x = (w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][np.arange(seq)]
         + w["embeddings.token_type_embeddings.weight"][tt])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    mask = (input_ids == config["pad_token_id"])[:, None, None, :] * -1e4  # [batch, 1, 1, seq]

    def lin(t, name):
        return t @ w[name + ".weight"].T + w[name + ".bias"]

    for n in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{n}."
        q, k, v = (lin(x, p + f"attention.self.{m}").reshape(batch, seq, heads, d).transpose(0, 2, 1, 3)
                   for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + mask  # [batch, heads, seq, seq]
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        if head_mask is not None:
            probs = probs * np.asarray(head_mask, dtype="float64")[n][None, :, None, None]
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, heads * d)
        x = _layer_norm(x + lin(ctx, p + "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"], eps)
        inner = lin(x, p + "intermediate.dense")
        inner = 0.5 * inner * (1 + erf(inner / np.sqrt(2)))
        x = _layer_norm(x + lin(inner, p + "output.dense"), w[p + "output.LayerNorm.weight"],
                        w[p + "output.LayerNorm.bias"], eps)
    pooled = np.tanh(lin(x[:, 0], "pooler.dense"))
    logits = lin(pooled, "classifier") if "classifier.weight" in w else None
    return x, pooled, logits


def random_ids(rng: np.random.Generator, batch: int, seq: int, pad_from=None) -> np.ndarray:
    """Token ids [batch, seq] without specials; row r is padded from ``pad_from[r]`` on."""
    ids = rng.integers(5, len(VOCAB), size=(batch, seq)).astype("int64")
    ids[:, 0] = 2  # [CLS]
    if pad_from is not None:
        for r, start in enumerate(pad_from):
            ids[r, start:] = 0
    return ids


def write_sentiment_data(path: Path, n_train: int = 240, n_dev: int = 60, n_test: int = 60, seed: int = 0,
                         fmt: str = "txt", words=(2, 9)) -> Path:
    """A learnable toy task: label 1 iff the text contains 'good' (else it contains 'bad'); ``words`` filler words."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        rows = []
        for _ in range(n):
            label = rng.randint(0, 1)
            filler = [rng.choice(WORDS[2:]) for _ in range(rng.randint(*words))]
            filler.insert(rng.randint(0, len(filler)), "good" if label else "bad")
            rows.append((label, " ".join(filler)))
        if fmt == "txt":
            text = "".join(f"{label} {sentence}\n" for label, sentence in rows)
            (path / f"{split}.txt").write_text(text)
        else:
            text = "label\ttext_a\n" + "".join(f"{label}\t{sentence}\n" for label, sentence in rows)
            (path / f"{split}.tsv").write_text(text)
    return path


def supernet_at(ofa, width, ids):
    """The logits ``[batch, num_labels]`` (NumPy) of a PaddleSlim supernet at ``width`` on token ids ``ids``."""
    import paddle

    from paddle_dynafast.model.forward import head_mask_forward
    from paddle_dynafast.train import supernet

    ofa.model.eval()
    ofa.set_net_config(supernet.width_config(ofa, width))
    with head_mask_forward(ofa.model):
        return supernet.supernet_logits(ofa, {"input_ids": ids, "token_type_ids": paddle.zeros_like(ids)}).numpy()


def texts_of(data_dir: Path, n: int, split: str = "test"):
    """The first ``n`` texts of a ``LABEL TEXT`` split file."""
    return [line.split(" ", 1)[1] for line in (data_dir / f"{split}.txt").read_text().splitlines()][:n]


class Payload:
    """Unpickling this object runs code: it writes ``marker`` (what a crafted ``.pdparams`` would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('the pickle ran')",)


def plant_payload(path: Path, marker: Path) -> Path:
    """Write a pickle at ``path`` that writes ``marker`` when it is loaded (as ``paddle.load`` would load it)."""
    import pickle

    with open(path, "wb") as f:
        pickle.dump({"bert.embeddings.word_embeddings.weight": Payload(marker)}, f, protocol=2)
    return path


def make_legacy(directory: Path) -> Path:
    """Turn a stage directory of ours into what versions before 0.2 wrote: pickled weights (``paddle.save``)."""
    import paddle
    from safetensors.numpy import load_file

    for safe, pickled in (("model.safetensors", "model_state.pdparams"), ("branches.safetensors", "branches.pdparams")):
        if (directory / safe).is_file():
            paddle.save({k: paddle.to_tensor(v) for k, v in load_file(str(directory / safe)).items()},
                        str(directory / pickled))
            (directory / safe).unlink()
    return directory


def write_pair_data(path: Path, n_train: int = 200, n_dev: int = 48, n_test: int = 48, seed: int = 0) -> Path:
    """A toy sentence-pair task as ``.tsv`` with ``text_b``: label 1 iff the *second* text contains 'good'. Both
    texts hold 'good' or 'bad' at random, so only the segment (``token_type_ids``) tells which one counts."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)

    def sentence(word):
        filler = [rng.choice(WORDS[2:]) for _ in range(rng.randint(1, 5))]
        filler.insert(rng.randint(0, len(filler)), word)
        return " ".join(filler)

    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        rows = []
        for _ in range(n):
            label = rng.randint(0, 1)
            rows.append(f"{label}\t{sentence(rng.choice(['good', 'bad']))}\t{sentence('good' if label else 'bad')}\n")
        (path / f"{split}.tsv").write_text("label\ttext_a\ttext_b\n" + "".join(rows))
    return path


def pairs_of(data_dir: Path, n: int, split: str = "test"):
    """``(text_a, text_b, label)`` lists of the first ``n`` rows of a pair ``.tsv`` split."""
    rows = [line.split("\t") for line in (data_dir / f"{split}.tsv").read_text().splitlines()[1:n + 1]]
    return [r[1] for r in rows], [r[2] for r in rows], [r[0] for r in rows]


class Recording(Runtime):
    """A runtime that records every call (speed, batch size), can hold its first call until ``release`` is set, and
    fails when told to."""

    def __init__(self, inner: Runtime, hold_first: bool = False):
        self.inner, self.info, self.kind = inner, inner.info, inner.kind
        self.calls, self.fail = [], False
        self.entered, self.release = threading.Event(), threading.Event()
        if not hold_first:
            self.release.set()

    def run_batch(self, input_ids, token_type_ids, speed=0.0):
        self.calls.append((float(speed), len(input_ids)))
        self.entered.set()
        self.release.wait(30)
        if self.fail:
            self.fail = False
            raise RuntimeError("the runtime broke")
        return self.inner.run_batch(input_ids, token_type_ids, speed)


def copy_export(tiny_exports, tmp_path: Path, key=(1.0, True), name: str = "copy") -> Path:
    """A copy of one of the session's tiny exports, free to edit."""
    return Path(shutil.copytree(tiny_exports[key], tmp_path / name))


def edit_export_file(directory: Path, name: str, change) -> None:
    """Edit a JSON file of an export and, as someone editing it on purpose would, update the manifest's hashes."""
    path = directory / name
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    rehash(directory)


def rehash(directory: Path) -> None:
    """Update the manifest's hashes of an edited export, as someone editing it on purpose would (following links,
    as ``sha256sum`` does)."""
    import hashlib

    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())
                         if p.name != "manifest.json"}
    (directory / "manifest.json").write_text(json.dumps(manifest))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(process, url: str, seconds: float) -> None:
    """Until the server started as ``process`` answers ``url/health`` with 200; it must not exit (its stderr's end
    is the message), nor take longer than ``seconds``."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)


def one_quantized_product(tmp_path: Path, weight: np.ndarray, activations: str, weight_bits: Optional[int] = None):
    """ONNX Runtime on one ``x @ weight`` quantized by ``quantize_onnx`` with ``activations`` (written to
    ``tmp_path / "q.onnx"``): a function of ``x`` ``[batch, seq, in]``."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from paddle_dynafast.runtime import quantize

    inputs, outputs = weight.shape
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weight)),
         helper.make_node("MatMul", ["x", "w"], ["y"], name="product")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None, outputs])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "f.onnx"))
    assert quantize.quantize_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx", {"w": None}, activations, weight_bits) == 1
    session = onnxruntime.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})[0]
