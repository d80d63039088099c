"""Export to Paddle Inference: the exit loop survives, equal to dygraph; the artifact checks itself."""
import json
import shutil

import numpy as np
import paddle
import pytest

from helpers import texts_of
from paddle_dynafast import data
from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.runtime import export
from paddle_dynafast.runtime.base import ExportInfo, verify
from paddle_dynafast.runtime.predictor import Predictor


@pytest.mark.parametrize("width", [1.0, 0.5])
@pytest.mark.parametrize("speed", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("batch_size", [1, 32])
def test_exported_exit_loop_equals_dygraph(tiny_exports, tiny_dynafast_dir, toy_data, width, speed, batch_size):
    texts = texts_of(toy_data, 40)
    predictor = Predictor(tiny_exports[(width, True)], threads=1)
    got = predictor.predict(texts, speed=speed, batch_size=batch_size)
    model = DynaFastModel.load(tiny_dynafast_dir)
    features = data.encode([data.Example(t, None, None, "") for t in texts], model.tokenizer, 16)
    loader = data.make_loader(features, 0, batch_size, shuffle=False)
    probs, exits = np.zeros((40, 2), "float32"), np.zeros(40, "int64")
    with paddle.no_grad():
        for batch in loader:
            p, e, _ = model.at(width)(batch["input_ids"], batch["token_type_ids"], speed=speed)
            probs[batch["index"].numpy()], exits[batch["index"].numpy()] = p.numpy(), e.numpy()
    np.testing.assert_array_equal(got.exit_layer, exits)
    np.testing.assert_array_equal(got.label_ids, probs.argmax(-1))
    np.testing.assert_allclose(got.probs, probs, atol=1e-4)
    assert got.labels == [model.labels[i] for i in probs.argmax(-1)]
    if speed == 1.0:
        assert set(got.exit_layer.tolist()) == {1}


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_exported_baseline_equals_the_classifier(tiny_exports, tiny_dynafast_dir, toy_data, width):
    texts = texts_of(toy_data, 20)
    got = Predictor(tiny_exports[(width, False)], threads=1, onednn=False).predict(texts, batch_size=8)
    model = DynaFastModel.load(tiny_dynafast_dir)
    backbone = model.at(width).backbone
    expected = []
    for text in texts:
        ids = paddle.to_tensor([model.tokenizer(text)["input_ids"]])
        expected.append(paddle.nn.functional.softmax(backbone(ids), axis=-1).numpy()[0])
    np.testing.assert_allclose(got.probs, np.array(expected), atol=1e-5)
    assert set(got.exit_layer.tolist()) == {2}
    info = json.loads((tiny_exports[(width, False)] / "export.json").read_text())
    assert info["exit_loop"] is False and info["width"] == width and info["labels"] == ["0", "1"]


def test_altered_or_missing_files_are_named(tmp_path, tiny_exports):
    copy = shutil.copytree(tiny_exports[(1.0, True)], tmp_path / "copy")
    with open(copy / "model.pdiparams", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match=r"model.pdiparams was altered"):
        Predictor(copy)
    other = shutil.copytree(tiny_exports[(1.0, True)], tmp_path / "other")
    (other / "vocab.txt").unlink()
    with pytest.raises(ArtifactError, match=r"vocab.txt is missing"):
        verify(other)
    with pytest.raises(ArtifactError, match="has no manifest.json"):
        Predictor(tmp_path)


def test_exit_loop_needs_branches(tmp_path, tiny_supernet_dir):
    with pytest.raises(FileNotFoundError, match="pass no_exit=True"):
        export.export_model(tiny_supernet_dir, tmp_path / "x")
    out = export.export_model(tiny_supernet_dir, tmp_path / "plain", width=0.25, no_exit=True)
    assert json.loads((out / "export.json").read_text())["exit_loop"] is False
    with pytest.raises(ValueError, match=r"width 0.3 was not trained"):
        export.export_model(tiny_supernet_dir, tmp_path / "y", width=0.3, no_exit=True)


def test_an_export_is_current_only_for_the_same_source_width_and_kind(tmp_path, tiny_exports, tiny_dynafast_dir):
    directory = tiny_exports[(0.5, True)]
    assert export.export_is_current(directory, tiny_dynafast_dir, 0.5, no_exit=False, onnx=True)
    assert not export.export_is_current(directory, tiny_dynafast_dir, 1.0, no_exit=False)
    assert not export.export_is_current(directory, tiny_dynafast_dir, 0.5, no_exit=True)
    assert not export.export_is_current(directory, tmp_path, 0.5, no_exit=False)
    assert not export.export_is_current(tmp_path / "nothing", tiny_dynafast_dir, 0.5, no_exit=False)
    info = ExportInfo.read(directory)
    assert (info.width, info.exit_loop, info.num_layers, info.max_seq_len) == (0.5, True, 2, 16)
    assert info.flops(np.array([10, 10]), np.array([1, 2])).tolist()[0] < info.flops(np.array([10]), np.array([2]))[0]


@pytest.mark.parametrize("exit_loop", [True, False])
def test_exported_programs_hold_no_dropout(tiny_exports, exit_loop):
    program = (tiny_exports[(1.0, exit_loop)] / "model.json").read_text()
    assert '"1.dropout"' not in program and '"1.matmul"' in program
