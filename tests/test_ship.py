"""Shipping a measured export: the same files, the promise added, and nothing shipped that was not measured."""
import json
import shutil

import pytest

from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.runtime.export_info import ExportInfo
from paddle_dynafast.runtime.manifest import sha256, write_manifest
from paddle_dynafast.runtime.promise import Promise, SplitDrop
from paddle_dynafast.runtime.ship import copy_export, ship_measured


def _promise(directory, width=0.5, **changes) -> Promise:
    return Promise(width=width, speed=0.3, measured_on="onnxruntime int8", reference="teacher",
                   max_accuracy_drop=0.5, confidence=0.9, within_budget=True, dev=SplitDrop(0.9, 0.9, 0.0),
                   program_files={"model.int8.onnx": sha256(directory / "model.int8.onnx")}, **changes)


def test_the_measured_files_are_shipped_with_the_promise(tiny_exports, tmp_path):
    measured = tiny_exports[(0.5, True)]
    promise = _promise(measured)
    out = ship_measured(measured, tmp_path / "out", promise)
    assert ExportInfo.read(out).promise == promise
    original = json.loads((measured / "manifest.json").read_text())["files"]
    shipped = json.loads((out / "manifest.json").read_text())["files"]
    assert {k: v for k, v in shipped.items() if k != "export.json"} == {
        k: v for k, v in original.items() if k != "export.json"}
    with pytest.raises(ArtifactError, match="holds an earlier export output; pass --overwrite"):
        ship_measured(measured, out, promise)  # an earlier export is replaced only when asked
    assert ship_measured(measured, out, promise, overwrite=True) == out


def test_nothing_is_shipped_that_was_not_measured(tiny_exports, tmp_path):
    measured = shutil.copytree(tiny_exports[(0.5, True)], tmp_path / "measured")
    promise = _promise(measured)
    with open(measured / "model.int8.onnx", "ab") as f:  # another program, with a manifest that says so
        f.write(b"\0")
    write_manifest(measured)
    with pytest.raises(ArtifactError, match=r"\['model.int8.onnx'\] differ from the files the calibration measured"):
        ship_measured(measured, tmp_path / "out", promise)
    with pytest.raises(ArtifactError, match="is an export of width 0.5, the promise is about width 1.0"):
        ship_measured(tiny_exports[(0.5, True)], tmp_path / "out", _promise(tiny_exports[(0.5, True)], width=1.0))
    assert not (tmp_path / "out").exists()


def test_a_copied_export_is_the_same_program_and_a_damaged_one_is_not_copied(tiny_exports, tmp_path):
    source = tiny_exports[(1.0, False)]
    out = copy_export(source, tmp_path / "out")
    assert (out / "manifest.json").read_bytes() == (source / "manifest.json").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in source.iterdir())
    assert ExportInfo.read(out).width == 1.0  # every file checked against the manifest
    damaged = shutil.copytree(source, tmp_path / "damaged")
    with open(damaged / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="model.onnx"):
        copy_export(damaged, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_a_shipped_export_runs_at_its_promised_speed_unless_told_otherwise(tiny_exports, tmp_path, capsys):
    """predict and serve default to the speed the promise is about; /health shows the promise; an export without
    one runs at 0 (every layer)."""
    import dataclasses

    import httpx

    from paddle_dynafast import cli
    from paddle_dynafast.config import ServeConfig
    from paddle_dynafast.runtime.predictor import Predictor
    from paddle_dynafast.runtime.serve import ModelServer

    measured = tiny_exports[(0.5, True)]
    promise = dataclasses.replace(_promise(measured), speed=1.0)
    out = ship_measured(measured, tmp_path / "out", promise)
    assert ExportInfo.read(out).default_speed == 1.0 and ExportInfo.read(measured).default_speed == 0.0
    (tmp_path / "in.txt").write_text("good w1\nbad w2\n")
    for directory, layer in ((out, 1), (measured, 2)):  # speed 1: everyone leaves after layer 1 of 2
        assert cli.main(["predict", "--model", str(directory), "--input", str(tmp_path / "in.txt"), "--threads", "1",
                         "--runtime", "onnxruntime"]) == 0
        assert [json.loads(line)["exit_layer"] for line in capsys.readouterr().out.splitlines()] == [layer, layer]
    with ModelServer(Predictor(out, "onnxruntime", threads=1), ServeConfig(port=0)) as running:
        health = httpx.get(running.url + "/health").json()
        answer = httpx.post(running.url + "/predict", json={"texts": ["good w1"]}).json()
    assert health["promise"] == promise.to_json() and health["default_speed"] == 1.0
    assert answer["speed"] == 1.0 and answer["predictions"][0]["exit_layer"] == 1
