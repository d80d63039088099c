"""What an export directory says it holds: ExportInfo read from export.json after the manifest is checked, a missing
or malformed entry named, the output names of each kind, and the FLOPs of each sample."""
import re

import numpy as np
import pytest

from helpers import copy_export, edit_export_file
from paddle_dynafast.config import BranchConfig
from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.model.flops import BertShape, full_flops, layer_flops, model_flops, sample_flops
from paddle_dynafast.runtime.export_info import INPUTS, OUTPUTS, ExportInfo, read_export_json

TINY_SHAPE = BertShape(hidden_size=32, num_layers=2, num_heads=4, head_dim=8, intermediate_size=37, num_labels=2)


def test_an_export_with_the_exit_loop(tiny_exports, tiny_dynafast_dir):
    info = ExportInfo.read(tiny_exports[(0.5, True)])
    assert (info.width, info.exit_loop, info.num_layers, info.labels, info.max_seq_len) == (0.5, True, 2, ("0", "1"), 16)
    assert info.shape == TINY_SHAPE and info.branch == BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2)
    assert info.inputs == INPUTS and info.output_names == OUTPUTS and len(info.outputs) == len(info.onnx_outputs) == 3
    assert info.source == str(tiny_dynafast_dir) and info.directory == tiny_exports[(0.5, True)]
    tokens, exits = np.array([5, 16, 16]), np.array([1, 1, 2])
    np.testing.assert_array_equal(info.flops(tokens, exits), sample_flops(TINY_SHAPE, info.branch, tokens, exits, 0.5))
    flops = info.flops(tokens, exits)
    # one more layer and the final head instead of the branch that let the sample go
    assert flops[0] < flops[1] < flops[2] and flops[2] - flops[1] > layer_flops(TINY_SHAPE, 16, 0.5)


def test_an_export_without_the_exit_loop(tiny_exports):
    info = ExportInfo.read(tiny_exports[(1.0, False)])
    assert (info.exit_loop, info.branch, info.inputs, info.output_names) == (False, None, INPUTS[:2], OUTPUTS[:1])
    assert len(info.outputs) == 1 and info.onnx_outputs == ()
    tokens = np.array([4, 16])
    np.testing.assert_array_equal(info.flops(tokens, np.array([2, 2])), full_flops(TINY_SHAPE, tokens))
    assert info.flops(tokens, np.array([2, 2]))[1] == model_flops(TINY_SHAPE, 16)


def test_an_export_made_before_the_output_names_were_recorded(tmp_path, tiny_exports):
    directory = copy_export(tiny_exports, tmp_path)
    edit_export_file(directory, "export.json", lambda r: (r.update(outputs=list(OUTPUTS)), r.pop("inputs")))
    info = ExportInfo.read(directory)
    assert info.outputs == () and info.inputs == INPUTS  # outputs then read by position
    assert read_export_json(directory)["outputs"] == list(OUTPUTS)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(num_layers=99), "export.json: num_layers 99 differs from its full_width_shape's 2"),
    (lambda r: r.pop("width"), "export.json is malformed: KeyError 'width'"),
    (lambda r: r.update(labels=None), "export.json is malformed: TypeError 'NoneType' object is not iterable"),
    (lambda r: r["full_width_shape"].update(depth=3), "export.json is malformed: TypeError"),
])
def test_a_malformed_export_json_is_named(tmp_path, tiny_exports, change, message):
    directory = copy_export(tiny_exports, tmp_path)
    edit_export_file(directory, "export.json", change)
    with pytest.raises(ArtifactError, match=re.escape(message)):
        ExportInfo.read(directory)


def test_export_json_is_read_only_after_the_manifest_is_checked(tmp_path, tiny_exports):
    directory = copy_export(tiny_exports, tmp_path)
    (directory / "export.json").write_text("{}")  # without updating the manifest
    with pytest.raises(ArtifactError, match=r"export.json was altered"):
        ExportInfo.read(directory)
