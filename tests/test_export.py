"""Export to Paddle Inference: the exit loop survives, equal to dygraph; the artifact checks itself."""
import json
import shutil

import numpy as np
import paddle
import pytest

from paddle_dynafast import data, export
from paddle_dynafast.distill import DynaFastModel


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_dynafast_dir):
    root = tmp_path_factory.mktemp("export")
    return {(w, exit_loop): export.export_model(tiny_dynafast_dir, root / f"w{w}-{exit_loop}", width=w,
                                                no_exit=not exit_loop, onnx=w == 0.5)
            for w in (1.0, 0.5) for exit_loop in (True, False)}


def _texts(toy_data, n):
    return [line.split(" ", 1)[1] for line in (toy_data / "test.txt").read_text().splitlines()][:n]


@pytest.mark.parametrize("width", [1.0, 0.5])
@pytest.mark.parametrize("speed", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("batch_size", [1, 32])
def test_exported_exit_loop_equals_dygraph(exported, tiny_dynafast_dir, toy_data, width, speed, batch_size):
    texts = _texts(toy_data, 40)
    predictor = export.Predictor(exported[(width, True)], threads=1)
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
def test_exported_baseline_equals_the_classifier(exported, tiny_dynafast_dir, toy_data, width):
    texts = _texts(toy_data, 20)
    got = export.Predictor(exported[(width, False)], threads=1, onednn=False).predict(texts, batch_size=8)
    model = DynaFastModel.load(tiny_dynafast_dir)
    backbone = model.at(width).backbone
    expected = []
    for text in texts:
        ids = paddle.to_tensor([model.tokenizer(text)["input_ids"]])
        expected.append(paddle.nn.functional.softmax(backbone(ids), axis=-1).numpy()[0])
    np.testing.assert_allclose(got.probs, np.array(expected), atol=1e-5)
    assert set(got.exit_layer.tolist()) == {2}
    info = json.loads((exported[(width, False)] / "export.json").read_text())
    assert info["exit_loop"] is False and info["width"] == width and info["labels"] == ["0", "1"]


def test_altered_or_missing_files_are_named(tmp_path, exported):
    copy = shutil.copytree(exported[(1.0, True)], tmp_path / "copy")
    with open(copy / "model.pdiparams", "ab") as f:
        f.write(b"\0")
    with pytest.raises(export.ArtifactError, match=r"model.pdiparams was altered"):
        export.Predictor(copy)
    other = shutil.copytree(exported[(1.0, True)], tmp_path / "other")
    (other / "vocab.txt").unlink()
    with pytest.raises(export.ArtifactError, match=r"vocab.txt is missing"):
        export.verify(other)
    with pytest.raises(export.ArtifactError, match="has no manifest.json"):
        export.Predictor(tmp_path)


def test_bad_requests_are_clear_errors(exported):
    predictor = export.Predictor(exported[(1.0, True)], threads=1)
    with pytest.raises(ValueError, match="no texts to predict"):
        predictor.predict([])
    with pytest.raises(ValueError, match=r"text 1 is empty \(2 empty text\(s\) in all\)"):
        predictor.predict(["good w1", "  ", ""])
    with pytest.raises(ValueError, match=r"speed 2.0 is not in \[0, 1\]"):
        predictor.predict(["good"], speed=2.0)
    long = predictor.predict(["w1 " * 40 + "good", "bad"])
    assert long.truncated == 1 and long.probs.shape == (2, 2)


def test_exit_loop_needs_branches(tmp_path, tiny_supernet_dir):
    with pytest.raises(FileNotFoundError, match="pass no_exit=True"):
        export.export_model(tiny_supernet_dir, tmp_path / "x")
    out = export.export_model(tiny_supernet_dir, tmp_path / "plain", width=0.25, no_exit=True)
    assert json.loads((out / "export.json").read_text())["exit_loop"] is False
    with pytest.raises(ValueError, match=r"width 0.3 was not trained"):
        export.export_model(tiny_supernet_dir, tmp_path / "y", width=0.3, no_exit=True)


def test_predict_command(tmp_path, exported, toy_data, capsys):
    from paddle_dynafast import cli

    code = cli.main(["predict", "--model", str(exported[(0.5, True)]), "--input", str(toy_data / "test.txt"),
                     "--labeled", "--speed", "0.3", "--threads", "1", "--output", str(tmp_path / "out.jsonl")])
    assert code == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(lines) == 48 and set(lines[0]) == {"label", "probs", "exit_layer"}
    texts = _texts(toy_data, 48)
    expected = export.Predictor(exported[(0.5, True)], threads=1).predict(texts, speed=0.3)
    assert [line["label"] for line in lines] == expected.labels
    (tmp_path / "in.txt").write_text("good w1\n\nbad w2\n")
    code = cli.main(["predict", "--model", str(exported[(0.5, True)]), "--input", str(tmp_path / "in.txt")])
    assert code == 2 and "in.txt:2: empty line (1 in all)" in capsys.readouterr().err


def test_bench_command(tmp_path, exported, toy_data, capsys):
    from paddle_dynafast import cli

    code = cli.main(["bench", "--system", f"full={exported[(1.0, False)]}",
                     "--system", f"adaptive={exported[(0.5, True)]}@0.3", "--data-dir", str(toy_data),
                     "--samples", "10", "--rounds", "2", "--batch-size", "16", "--threads", "1",
                     "--output", str(tmp_path / "bench")])
    assert code == 0
    report = json.loads((tmp_path / "bench" / "bench.json").read_text())
    full, adaptive = report["results"]
    assert full["ratios"]["flops_speedup"] == 1.0 and full["name"] == "full"
    expected = export.Predictor(exported[(0.5, True)], threads=1).predict(_texts(toy_data, 48), speed=0.3)
    gold = [int(line.split(" ", 1)[0]) for line in (toy_data / "test.txt").read_text().splitlines()]
    assert adaptive["accuracy"] == pytest.approx(np.mean(expected.label_ids == np.array(gold)))
    assert adaptive["mean_exit_layer"] == pytest.approx(expected.exit_layer.mean())
    assert adaptive["ratios"]["flops_speedup"] > 1 and adaptive["latency_ms_median"] > 0
    assert "| adaptive |" in capsys.readouterr().out
    assert cli.main(["bench", "--system", "nonsense", "--data-dir", str(toy_data), "--output", str(tmp_path)]) == 2


@pytest.mark.parametrize("exit_loop", [True, False])
def test_onnx_runtime_equals_paddle_inference(exported, toy_data, exit_loop):
    """paddle2onnx converts the exit loop too (its conditional blocks become ONNX If)."""
    directory = exported[(0.5, exit_loop)]
    assert (directory / "model.onnx").is_file() and "model.onnx" in json.loads((directory / "manifest.json").read_text())["files"]
    predictor, onnx = export.Predictor(directory, threads=1), export.OnnxRunner(directory, threads=1)
    features, _ = predictor.encode(_texts(toy_data, 32))
    from paddle_dynafast.bench import batches

    for ids, types, _ in batches(features, 0, 8):
        for speed in (0.0, 0.3, 1.0) if exit_loop else (0.0,):
            p_paddle, e_paddle = predictor.run_batch(ids, types, speed)
            p_onnx, e_onnx = onnx.run_batch(ids, types, speed)
            np.testing.assert_array_equal(e_onnx, e_paddle)
            np.testing.assert_allclose(p_onnx, p_paddle, atol=1e-5)
