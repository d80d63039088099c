"""The dygraph runtime: the same answers as Paddle Inference at every width, with and without the exit loop; a stage
directory runs at a trained width only; an export runs from the directory it was exported from; its thread count is
set for each batch and put back after it, and building it changes nothing in the process."""

import numpy as np
import pytest

from helpers import copy_export, edit_export_file, texts_of
from paddle_dynafast.errors import ArtifactError
from paddle_dynafast.runtime.auto import open_runtime
from paddle_dynafast.runtime.bench import batches
from paddle_dynafast.runtime.dygraph import DygraphRuntime
from paddle_dynafast.runtime.predictor import Predictor
from paddle_dynafast.runtime.threads import current_threads


@pytest.mark.parametrize("width, exit_loop", [(1.0, True), (0.5, True), (1.0, False), (0.5, False)])
def test_dygraph_equals_paddle_inference(tiny_exports, toy_data, width, exit_loop):
    directory = tiny_exports[(width, exit_loop)]
    paddle_inference = open_runtime(directory, "paddle-inference", threads=1, onednn=False)
    dygraph = open_runtime(directory, "dygraph")
    assert dygraph.info.width == width and dygraph.info.exit_loop is exit_loop
    assert dygraph.info.labels == paddle_inference.info.labels
    features, _ = Predictor(paddle_inference).encode(texts_of(toy_data, 24))
    for ids, types, _ in batches(features, 0, 8):
        for speed in (0.0, 0.3, 1.0):
            p_inference, e_inference = paddle_inference.run_batch(ids, types, speed)
            p_dygraph, e_dygraph = dygraph.run_batch(ids, types, speed)
            np.testing.assert_array_equal(e_dygraph, e_inference)
            np.testing.assert_allclose(p_dygraph, p_inference, atol=1e-5)


def test_dygraph_runs_a_stage_directory(tiny_dynafast_dir, tiny_supernet_dir):
    runtime = DygraphRuntime(tiny_dynafast_dir, width=0.5)
    assert runtime.info.exit_loop and runtime.info.max_seq_len == 16 and runtime.info.labels == ("0", "1")
    plain = DygraphRuntime(tiny_supernet_dir, width=0.25)
    assert not plain.info.exit_loop
    with pytest.raises(ValueError, match="width 0.3 was not trained"):
        DygraphRuntime(tiny_supernet_dir, width=0.3)


def test_an_export_whose_source_is_gone_is_named(tmp_path, tiny_exports, tiny_dynafast_dir):
    directory = copy_export(tiny_exports, tmp_path, (0.5, True))
    runtime = DygraphRuntime(directory)
    assert (runtime.info.width, runtime.info.exit_loop, runtime.info.directory) == (0.5, True, tiny_dynafast_dir)
    edit_export_file(directory, "export.json", lambda raw: raw.update(source=str(tmp_path / "moved")))
    with pytest.raises(ArtifactError, match=r"was exported from .*moved, which is gone: dygraph needs it"):
        DygraphRuntime(directory)


def test_threads_are_set_for_each_batch_and_put_back(tiny_dynafast_dir, toy_data):
    before = current_threads()
    if before is None:
        pytest.skip("this Paddle build has no libmklml_intel.so / libiomp5.so to read the thread counts from")
    runtime = DygraphRuntime(tiny_dynafast_dir, width=0.5, threads=before.openmp + 1)
    assert current_threads() == before  # building it changed nothing
    seen, adaptive = [], runtime.adaptive

    def recording(*args, **kwargs):
        seen.append(current_threads().openmp)
        return adaptive(*args, **kwargs)

    runtime.adaptive = recording
    features, _ = Predictor(runtime).encode(texts_of(toy_data, 8))
    (ids, types, _), = batches(features, 0, 8)
    probs, exits = runtime.run_batch(ids, types, 0.3)
    assert seen == [before.openmp + 1] and current_threads() == before
    expected = DygraphRuntime(tiny_dynafast_dir, width=0.5).run_batch(ids, types, 0.3)  # threads as they are
    np.testing.assert_allclose(probs, expected[0], atol=1e-6)
    np.testing.assert_array_equal(exits, expected[1])
