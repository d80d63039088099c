"""Export to Paddle Inference: the exit loop survives, equal to dygraph; the artifact checks itself."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import paddle
import pytest

from helpers import texts_of
from paddle_dynafast import data
from paddle_dynafast.config import ExportConfig
from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.model.dynafast import DynaFastModel
from paddle_dynafast.runtime import export
from paddle_dynafast.runtime.export_info import ExportInfo
from paddle_dynafast.runtime.manifest import read_sign_key, sha256, verify
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
        export.export_model(ExportConfig(tiny_supernet_dir, tmp_path / "x"))
    out = export.export_model(ExportConfig(tiny_supernet_dir, tmp_path / "plain", width=0.25, no_exit=True))
    assert json.loads((out / "export.json").read_text())["exit_loop"] is False
    with pytest.raises(ValueError, match=r"width 0.3 was not trained"):
        export.export_model(ExportConfig(tiny_supernet_dir, tmp_path / "y", width=0.3, no_exit=True))


def test_an_export_is_current_only_for_the_same_source_width_and_kind(tmp_path, tiny_exports, tiny_dynafast_dir):
    directory = tiny_exports[(0.5, True)]
    assert export.export_is_current(directory, tiny_dynafast_dir, 0.5, no_exit=False, onnx=True, int8="dynamic")
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


def _copy(tiny_exports, tmp_path, key=(1.0, True), name="copy"):
    return Path(shutil.copytree(tiny_exports[key], tmp_path / name))


def _edit(directory, name, change):
    """Edit a JSON file of an export and, as someone editing it on purpose would, update the manifest's hashes."""
    path = directory / name
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"] = {p.name: sha256(p) for p in sorted(directory.iterdir()) if p.name != "manifest.json"}
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_the_manifest_lists_every_file_and_only_those(tmp_path, tiny_exports):
    extra = _copy(tiny_exports, tmp_path, name="extra")
    (extra / "notes.txt").write_text("x")
    with pytest.raises(ArtifactError, match=r"extra/notes.txt is not listed in manifest.json"):
        verify(extra)
    for name, change, message in (
            ("empty", lambda m: m.update(files={}), r"empty/manifest.json lists no files"),
            ("none", lambda m: m.pop("files"), r"none/manifest.json lists no files"),
            ("bad", lambda m: m.update(files={"../x": "0" * 64}), r"lists '../x', which is not a file name"),
            ("hash", lambda m: m["files"].update({"vocab.txt": "abc"}), r"gives vocab.txt the sha256 'abc'")):
        directory = _copy(tiny_exports, tmp_path, name=name)
        manifest = json.loads((directory / "manifest.json").read_text())
        change(manifest)
        (directory / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match=message):
            Predictor(directory)
    truncated = _copy(tiny_exports, tmp_path, name="truncated")
    text = (truncated / "manifest.json").read_text()
    (truncated / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(ArtifactError, match=r"truncated/manifest.json is not valid JSON \(truncated or edited\?\)"):
        Predictor(truncated)


@pytest.mark.parametrize("key, change, message", [
    ((1.0, True), lambda r: r.update(labels=["0", "1", "2"]),
     r"export.json lists 3 labels \['0', '1', '2'\]; the program returns probabilities of shape \[1, 2\]"),
    ((1.0, False), lambda r: r.update(labels=["0"]), r"lists 1 labels \['0'\]; the program returns probabilities"),
    ((1.0, True), lambda r: r.update(num_layers=99), r"num_layers 99 differs from its full_width_shape's 2"),
    ((1.0, True), lambda r: (r.update(num_layers=3), r["full_width_shape"].update(num_layers=3)),
     r"says num_layers 3; at speed 0 the program runs 2 layers"),
    ((1.0, True), lambda r: r.update(max_seq_len=65),
     r"the program fails on a text of max_seq_len 65 tokens: .*expected >= 0 and < 64"),
    ((1.0, True), lambda r: r.update(inputs=["ids", "token_type_ids", "speed"]),
     r"lists inputs \['ids', 'token_type_ids', 'speed'\]; the program takes"),
    ((1.0, True), lambda r: r["outputs"].update(probs="nothing"), r"lists outputs \['nothing', .*the program returns"),
    ((1.0, True), lambda r: r.pop("width"), r"export.json is malformed: KeyError 'width'"),
])
def test_export_json_is_checked_against_the_program(tmp_path, tiny_exports, key, change, message):
    directory = _copy(tiny_exports, tmp_path, key)
    _edit(directory, "export.json", change)
    with pytest.raises(ArtifactError, match=message):
        Predictor(directory, threads=1)


def test_a_signed_export_refuses_deliberate_edits(tmp_path, tiny_dynafast_dir, tiny_exports, toy_data):
    (tmp_path / "key").write_bytes(b"0123456789abcdef0123456789abcdef\n")
    key = read_sign_key(tmp_path / "key")
    signed = export.export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "signed", width=0.5), sign_key=key)
    assert json.loads((signed / "manifest.json").read_text())["signature"]["algorithm"] == "hmac-sha256"
    texts = texts_of(toy_data, 8)
    expected = Predictor(tiny_exports[(0.5, True)], threads=1).predict(texts).labels
    assert Predictor(signed, threads=1, sign_key=key).predict(texts).labels == expected
    swapped = Path(shutil.copytree(signed, tmp_path / "swapped"))
    _edit(swapped, "export.json", lambda r: r.update(labels=["1", "0"]))  # the program cannot tell this one
    assert Predictor(swapped, threads=1).predict(texts).labels == [{"0": "1", "1": "0"}[x] for x in expected]
    with pytest.raises(ArtifactError, match=r"swapped/manifest.json: the signature does not match: the export was "
                                            r"edited after it was signed, or signed with another key"):
        Predictor(swapped, threads=1, sign_key=key)
    with pytest.raises(ArtifactError, match="the signature does not match"):
        Predictor(signed, threads=1, sign_key=b"another key of 16+ bytes")
    with pytest.raises(ArtifactError, match=r"manifest.json is not signed, and a sign key was given"):
        Predictor(tiny_exports[(0.5, True)], threads=1, sign_key=key)
    (tmp_path / "short").write_text("secret\n")
    with pytest.raises(ValueError, match=r"short holds 6 bytes; use at least 16 random ones"):
        read_sign_key(tmp_path / "short")


def test_the_sign_key_comes_from_the_configs_file_or_from_memory_not_both(tmp_path, tiny_dynafast_dir):
    (tmp_path / "key").write_bytes(b"0123456789abcdef0123456789abcdef\n")
    config = ExportConfig(tiny_dynafast_dir, tmp_path / "e", width=0.5, no_exit=True, onnx=False,
                          sign_key_file=tmp_path / "key")
    with pytest.raises(ValueError, match=r"two sign keys: sign_key and sign_key_file '.*key'; give one"):
        export.export_model(config, sign_key=b"another key of 16+ bytes")
    assert not (tmp_path / "e").exists()
    out = export.export_model(config)
    verify(out, read_sign_key(tmp_path / "key"))
    with pytest.raises(ArtifactError, match="the signature does not match"):
        verify(out, b"another key of 16+ bytes")

def test_export_never_replaces_what_it_did_not_write_nor_its_input(tmp_path, tiny_dynafast_dir, tiny_exports):
    with pytest.raises(ValueError, match=r"would write over the input .*dynafast of export"):
        export.export_model(ExportConfig(tiny_dynafast_dir, tiny_dynafast_dir), overwrite=True)
    assert DynaFastModel.load(tiny_dynafast_dir).widths  # still whole
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ArtifactError, match=r"notes is not empty and paddle-dynafast export did not write it"):
        export.export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "notes"), overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    earlier = _copy(tiny_exports, tmp_path, (1.0, False), name="earlier")
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
