"""Shipping a measured export: the same files, the promise added, and nothing shipped that was not measured."""
import json
import shutil

import pytest

from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.runtime.export_info import ExportInfo
from paddle_dynafast.runtime.manifest import sha256, write_manifest
from paddle_dynafast.runtime.promise import Promise, SplitDrop
from paddle_dynafast.runtime.ship import ship_measured


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
