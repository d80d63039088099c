"""The runtime interface: export.json checked against the program (its inputs, outputs, labels and layers, and one
text of max_seq_len tokens), each mismatch an ArtifactError naming the entry; outputs taken by the names export.json
records (by position for an export made before the names were recorded). A stub runtime first, then real exports."""
import json
import re

import numpy as np
import pytest

from helpers import copy_export, edit_export_file
from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.model.flops import BertShape
from paddle_dynafast.runtime.base import Runtime
from paddle_dynafast.runtime.export_info import INPUTS, OUTPUTS, ExportInfo
from paddle_dynafast.runtime.onnx_runtime import OnnxRuntime
from paddle_dynafast.runtime.auto import open_runtime
from paddle_dynafast.runtime.predictor import Predictor

SHAPE = BertShape(hidden_size=32, num_layers=2, num_heads=4, head_dim=8, intermediate_size=37, num_labels=2)


class Stub(Runtime):
    """Answers every batch with ``probs`` and ``exit_layer`` (or raises ``error``), recording the batches."""

    kind = "stub"

    def __init__(self, info, probs=((0.25, 0.75),), exit_layer=(2,), error=None):
        self.info, self.probs, self.exit_layer, self.error, self.batches = info, np.array(probs), exit_layer, error, []

    def run_batch(self, input_ids, token_type_ids, speed=0.0):
        self.batches.append((input_ids.shape, input_ids.dtype, int(token_type_ids.sum()), speed))
        if self.error is not None:
            raise self.error
        return self.probs, np.array(self.exit_layer)


def info(tmp_path, exit_loop=True) -> ExportInfo:
    return ExportInfo(directory=tmp_path, width=1.0, exit_loop=exit_loop, num_layers=2, labels=("0", "1"),
                      max_seq_len=16, shape=SHAPE, outputs=("f0", "f1", "f2") if exit_loop else ("f0",),
                      inputs=INPUTS if exit_loop else INPUTS[:2])


def test_a_program_that_matches_export_json_runs_one_text_of_max_seq_len(tmp_path):
    stub = Stub(info(tmp_path))
    stub.check_program(list(INPUTS), ["f2", "f0", "f1"], ["f0", "f1", "f2"])  # the order does not matter
    assert stub.batches == [((1, 16), np.dtype("int64"), 0, 0.0)]
    Stub(info(tmp_path)).check_program(list(INPUTS), ["f0", "f1"], [])  # no names recorded: outputs not compared


@pytest.mark.parametrize("stub, inputs, outputs, message", [
    (dict(), INPUTS[:2], OUTPUTS, "export.json lists inputs ['input_ids', 'token_type_ids', 'speed']; the program "
                                  "takes ['input_ids', 'token_type_ids']"),
    (dict(), INPUTS, ("f0", "f1"), "export.json lists outputs ['f0', 'f1', 'f2']; the program returns ['f0', 'f1']"),
    (dict(probs=[[0.2, 0.3, 0.5]]), INPUTS, None,
     "export.json lists 2 labels ['0', '1']; the program returns probabilities of shape [1, 3]"),
    (dict(exit_layer=[1]), INPUTS, None, "export.json says num_layers 2; at speed 0 the program runs 1 layers"),
    (dict(error=ValueError("In user code:\n\n  File x.py, line 3\n\nValueError: (InvalidArgument) index out of "
                           "range\n  [Hint: more]")), INPUTS, None,
     "export.json: the program fails on a text of max_seq_len 16 tokens: ValueError: (InvalidArgument) index out of "
     "range"),
])
def test_each_mismatch_is_named(tmp_path, stub, inputs, outputs, message):
    with pytest.raises(ArtifactError, match=re.escape(message)):
        Stub(info(tmp_path), **stub).check_program(list(inputs), list(outputs or ("f0", "f1", "f2")),
                                                   ["f0", "f1", "f2"])


def test_without_the_exit_loop_the_layers_are_not_checked(tmp_path):
    Stub(info(tmp_path, exit_loop=False), exit_layer=[0]).check_program(list(INPUTS[:2]), ["f0"], ["f0"])


def test_outputs_by_recorded_name_by_position_or_too_few(tmp_path):
    probs, exits, uncertainty = np.full((3, 2), 0.5), np.array([1, 2, 2]), np.zeros(3)
    stub = Stub(info(tmp_path))
    by_name = {"f2": uncertainty, "f1": exits, "f0": probs}
    got = stub._outputs(by_name, ("f0", "f1", "f2"), [uncertainty, exits, probs])
    assert got[0] is probs and got[1] is exits
    got = stub._outputs(by_name, (), [probs, exits, uncertainty])  # an export without recorded names
    assert got[0] is probs and got[1] is exits
    plain = Stub(info(tmp_path, exit_loop=False))
    got = plain._outputs({"f0": probs}, ("f0",), [probs])
    assert got[0] is probs and got[1].tolist() == [2, 2, 2] and got[1].dtype == np.int64  # every layer ran
    with pytest.raises(ArtifactError, match=re.escape("the program returns 1 outputs, export.json expects "
                                                      "['probs', 'exit_layer', 'uncertainty']")):
        stub._outputs({"f0": probs}, (), [probs])


def test_outputs_are_read_by_the_names_export_json_records(tiny_exports):
    info = ExportInfo.read(tiny_exports[(1.0, True)])
    raw = json.loads((tiny_exports[(1.0, True)] / "export.json").read_text())
    assert list(raw["outputs"]) == ["probs", "exit_layer", "uncertainty"]
    runtime = open_runtime(tiny_exports[(1.0, True)], threads=1)
    assert list(info.outputs) == list(raw["outputs"].values()) == runtime.output_names
    onnx = OnnxRuntime(tiny_exports[(0.5, True)], threads=1)
    assert list(ExportInfo.read(tiny_exports[(0.5, True)]).onnx_outputs) == onnx.output_names


@pytest.mark.parametrize("key, change, message", [
    ((1.0, True), lambda r: r.update(labels=["0", "1", "2"]),
     r"export.json lists 3 labels \['0', '1', '2'\]; the program returns probabilities of shape \[1, 2\]"),
    ((1.0, False), lambda r: r.update(labels=["0"]), r"lists 1 labels \['0'\]; the program returns probabilities"),
    ((1.0, True), lambda r: (r.update(num_layers=3), r["full_width_shape"].update(num_layers=3)),
     r"says num_layers 3; at speed 0 the program runs 2 layers"),
    ((1.0, True), lambda r: r.update(max_seq_len=65),
     r"the program fails on a text of max_seq_len 65 tokens: .*expected >= 0 and < 64"),
    ((1.0, True), lambda r: r.update(inputs=["ids", "token_type_ids", "speed"]),
     r"lists inputs \['ids', 'token_type_ids', 'speed'\]; the program takes"),
    ((1.0, True), lambda r: r["outputs"].update(probs="nothing"), r"lists outputs \['nothing', .*the program returns"),
])
def test_export_json_is_checked_against_the_program(tmp_path, tiny_exports, key, change, message):
    directory = copy_export(tiny_exports, tmp_path, key)
    edit_export_file(directory, "export.json", change)
    with pytest.raises(ArtifactError, match=message):
        Predictor(directory, threads=1)
