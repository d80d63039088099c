"""Export to Paddle Inference: the exit loop survives, equal to dygraph; an export is current only for its source,
width and kind; it never writes over what it did not write. (Its manifest and signature: test_manifest.py; export.json
read: test_export_info.py, and checked against the program: test_runtime_base.py.)"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import paddle
import pytest

from helpers import copy_export, texts_of
from paddle_dynafast import data
from paddle_dynafast.config import ExportConfig
from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.runtime import export
from paddle_dynafast.runtime.export_info import ExportInfo
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
    got = Predictor(tiny_exports[(width, False)], "paddle-inference", threads=1, onednn=False).predict(texts, batch_size=8)
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


def test_exit_loop_needs_branches(tmp_path, tiny_supernet_dir):
    with pytest.raises(FileNotFoundError, match="pass no_exit=True"):
        export.export_model(ExportConfig(tiny_supernet_dir, tmp_path / "x"))
    out = export.export_model(ExportConfig(tiny_supernet_dir, tmp_path / "plain", width=0.25, no_exit=True))
    assert json.loads((out / "export.json").read_text())["exit_loop"] is False
    with pytest.raises(ValueError, match=r"width 0.3 was not trained"):
        export.export_model(ExportConfig(tiny_supernet_dir, tmp_path / "y", width=0.3, no_exit=True))


def test_an_export_is_current_only_for_the_same_source_width_and_kind(tmp_path, tiny_exports, tiny_dynafast_dir):
    directory = tiny_exports[(0.5, True)]
    assert export.export_is_current(directory, tiny_dynafast_dir, 0.5, no_exit=False, onnx=True, int8="token")
    assert not export.export_is_current(directory, tiny_dynafast_dir, 0.5, no_exit=False, int8="dynamic")  # per tensor
    assert not export.export_is_current(directory, tiny_dynafast_dir, 0.5, no_exit=False, int8="static")
    assert not export.export_is_current(tiny_exports[(1.0, True)], tiny_dynafast_dir, 1.0, no_exit=False, onnx=True)
    assert not export.export_is_current(tiny_exports[(1.0, True)], tiny_dynafast_dir, 1.0, no_exit=False, int8="dynamic")
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


def test_export_never_replaces_what_it_did_not_write_nor_its_input(tmp_path, tiny_dynafast_dir, tiny_exports):
    with pytest.raises(ValueError, match=r"would write over the input .*dynafast of export"):
        export.export_model(ExportConfig(tiny_dynafast_dir, tiny_dynafast_dir), overwrite=True)
    assert DynaFastModel.load(tiny_dynafast_dir).widths  # still whole
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ArtifactError, match=r"notes is not empty and paddle-dynafast export did not write it"):
        export.export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "notes"), overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    earlier = copy_export(tiny_exports, tmp_path, (1.0, False), name="earlier")
    with pytest.raises(ArtifactError, match=r"earlier holds an earlier export output; pass --overwrite"):
        export.export_model(ExportConfig(tiny_dynafast_dir, earlier, width=0.5))
    assert json.loads((earlier / "export.json").read_text())["width"] == 1.0
    export.export_model(ExportConfig(tiny_dynafast_dir, earlier, width=0.5), overwrite=True)
    assert json.loads((earlier / "export.json").read_text())["width"] == 0.5


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_an_export_directory_gets_the_users_umask(tmp_path, tiny_dynafast_dir, mask):
    previous = os.umask(mask)
    try:
        out = export.export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "e", width=0.5, no_exit=True))
    finally:
        os.umask(previous)
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~mask)
    assert oct((out / "export.json").stat().st_mode & 0o777) == oct(0o666 & ~mask)


def test_a_program_written_incompletely_is_an_os_error(tmp_path, tiny_dynafast_dir):
    """A full disk (here a file-size limit in a child process): paddle.jit.save leaves a truncated model.json
    without an error; the export says so in one line (exit code 2), and leaves nothing behind."""
    code = textwrap.dedent("""
        import resource, sys
        from paddle_dynafast import cli
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        sys.exit(cli.main(sys.argv[1:]))
    """)
    done = subprocess.run([sys.executable, "-c", code, "export", "--model", str(tiny_dynafast_dir), "--output",
                           str(tmp_path / "e"), "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("paddle-dynafast export: error: [Errno 5] ")
    assert "model.json was written incompletely" in last
    assert "is the disk full" in last and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


ONNX_WARNINGS = """
import sys
import onnxruntime
for path in sys.argv[1:]:
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    print(path, [o.name for o in session.get_outputs()], [i.name for i in session.get_inputs()])
    print([o.shape[0] for o in session.get_outputs()], [i.shape for i in session.get_inputs()])
"""


def test_outputs_are_named_and_a_plain_onnx_runtime_session_loads_without_warnings(tiny_exports):
    """The program's and the ONNX models' outputs are probs, exit_layer and uncertainty (probs alone without the exit
    loop), as export.json records them; a plain InferenceSession, as a new user opens one, prints no warning (no
    constant that nothing uses is left)."""
    import json
    import subprocess
    import sys

    from paddle import inference

    for exit_loop, names in ((True, ["probs", "exit_layer", "uncertainty"]), (False, ["probs"])):
        directory = tiny_exports[(0.5, exit_loop)]
        info = json.loads((directory / "export.json").read_text())
        assert info["outputs"] == info["onnx_outputs"] == {n: n for n in names}
        config = inference.Config(str(directory / "model.json"), str(directory / "model.pdiparams"))
        config.disable_glog_info()
        assert inference.create_predictor(config).get_output_names() == names
        files = [str(directory / "model.onnx"), str(directory / "model.int8.onnx")]
        done = subprocess.run([sys.executable, "-c", ONNX_WARNINGS, *files], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert "W:onnxruntime" not in done.stderr and "Removing initializer" not in done.stderr, done.stderr
        inputs = ["input_ids", "token_type_ids"] + (["speed"] if exit_loop else [])
        shapes = [["batch", "seq"], ["batch", "seq"]] + ([[1]] if exit_loop else [])
        assert done.stdout.splitlines() == [line for path in files for line in (
            f"{path} {names} {inputs}", f"{['batch'] * len(names)} {shapes}")]
