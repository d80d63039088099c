"""Paddle Inference behind the runtime interface: bf16 on oneDNN stays close to float32; oneDNN's primitive cache is
raised, never lowered, and changes no result; the plain kernels run every linear layer fused, with the same
answers; a precision, device or program it cannot run is named."""
import json
import re
from collections import Counter

import numpy as np
import pytest
from paddle import inference

from helpers import copy_export, edit_export_file, texts_of
from paddle_dynafast.config.runtime import Precision
from paddle_dynafast.errors import ArtifactError, ConfigError
from paddle_dynafast.runtime.auto import open_runtime
from paddle_dynafast.runtime import paddle_inference
from paddle_dynafast.runtime.paddle_inference import PaddleInferenceRuntime
from paddle_dynafast.runtime.predictor import Predictor


def test_bf16_on_onednn_stays_close_to_float32(tiny_exports, toy_data):
    directory, texts = tiny_exports[(1.0, True)], texts_of(toy_data, 32)
    fp32 = Predictor(directory, "paddle-inference", threads=1).predict(texts, speed=0.3)
    bf16 = Predictor(directory, "paddle-inference", threads=1, precision="bf16").predict(texts, speed=0.3)
    assert np.mean(bf16.label_ids == fp32.label_ids) >= 0.9 and np.abs(bf16.probs - fp32.probs).mean() < 0.05


def test_plain_kernels_and_onednn_give_the_same_answers(tiny_exports, toy_data):
    directory, texts = tiny_exports[(0.5, True)], texts_of(toy_data, 16)
    plain = Predictor(PaddleInferenceRuntime(directory, threads=1, onednn=False)).predict(texts, speed=0.3)
    onednn = Predictor(PaddleInferenceRuntime(directory, threads=1, cache_capacity=4)).predict(texts, speed=0.3)
    assert plain.exit_layer.tolist() == onednn.exit_layer.tolist()
    np.testing.assert_allclose(plain.probs, onednn.probs, atol=1e-5)


def optimized_ops(config, directory):
    """Operators of the program Paddle Inference optimised from ``config``, counted by (name, inside an ``if``)."""
    config.set_optim_cache_dir(str(directory))
    config.enable_save_optim_model(True)
    inference.create_predictor(config)
    counts = Counter()

    def walk(block, nested):
        for op in block["ops"]:
            counts[op["#"], nested] += 1
            for region in op.get("regions") or []:
                for inner in region["blocks"]:
                    walk(inner, True)

    for region in json.loads((directory / "_optimized.json").read_text())["program"]["regions"]:
        for block in region["blocks"]:
            walk(block, False)
    return counts


def test_plain_kernels_run_every_linear_layer_fused_with_the_same_answers(tiny_exports, toy_data, tmp_path):
    directory = tiny_exports[(0.5, True)]
    program = directory / "model.json"
    fused = optimized_ops(paddle_inference.predictor_config(program, 1, False, "cpu", Precision.FP32, 0),
                          tmp_path / "fused")

    def unfused_config():  # Paddle Inference's own pass list on the plain kernels
        config = inference.Config(str(program), str(directory / "model.pdiparams"))
        config.disable_mkldnn()
        config.disable_glog_info()
        return config

    unfused = optimized_ops(unfused_config(), tmp_path / "unfused")
    for nested in (False, True):  # the exit loop's layers sit in if blocks: fused there too
        fc = fused["1.fc", nested]
        assert fc > 0 and unfused["1.fc", nested] == 0
        assert unfused["1.matmul", nested] - fused["1.matmul", nested] == fc
        assert unfused["1.add", nested] - fused["1.add", nested] == fc

    features, _ = Predictor(directory, "paddle-inference", threads=1).encode(texts_of(toy_data, 12))
    batch = np.array([f.input_ids for f in features if len(f.input_ids) == len(features[0].input_ids)])
    feeds = {"input_ids": batch, "token_type_ids": np.zeros_like(batch), "speed": np.array([0.3], "float32")}
    unfused_predictor = inference.create_predictor(unfused_config())
    for name, value in feeds.items():
        unfused_predictor.get_input_handle(name).copy_from_cpu(value)
    unfused_predictor.run()
    probs, exit_layer = PaddleInferenceRuntime(directory, threads=1, onednn=False).run_batch(
        batch, feeds["token_type_ids"], 0.3)
    assert len(batch) > 1  # the same kernels with the bias added after: bit for bit
    assert np.array_equal(unfused_predictor.get_output_handle("probs").copy_to_cpu(), probs)
    assert np.array_equal(unfused_predictor.get_output_handle("exit_layer").copy_to_cpu(), exit_layer)


@pytest.fixture
def primitive_cache():
    """oneDNN's primitive cache capacity, put back after the test (it is one per process)."""
    before = paddle_inference.primitive_cache_capacity()
    if before is None:
        pytest.skip("Paddle's oneDNN library (paddle/libs/libdnnl.so*) is not found in this build")
    yield lambda capacity: paddle_inference._onednn().dnnl_set_primitive_cache_capacity(capacity)
    paddle_inference._onednn().dnnl_set_primitive_cache_capacity(before)


def test_onednn_primitive_cache_is_raised_never_lowered_and_changes_no_result(tiny_exports, toy_data,
                                                                              primitive_cache, monkeypatch):
    directory, texts = tiny_exports[(1.0, True)], texts_of(toy_data, 40)
    monkeypatch.delenv(paddle_inference.PRIMITIVE_CACHE_VARIABLE, raising=False)
    primitive_cache(1)  # every primitive compiled again at every use
    recompiling = Predictor(PaddleInferenceRuntime(directory, threads=1, primitive_cache=0))
    # a speed at which samples leave after both layers: compacted batches of many shapes
    speed, recompiled = next((s, p) for s in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
                             for p in [recompiling.predict(texts, speed=s, batch_size=8)] if 1 < p.exit_layer.mean() < 2)
    assert paddle_inference.primitive_cache_capacity() == 1
    cached = Predictor(PaddleInferenceRuntime(directory, threads=1)).predict(texts, speed=speed, batch_size=8)
    assert paddle_inference.primitive_cache_capacity() == paddle_inference.PRIMITIVE_CACHE
    np.testing.assert_array_equal(recompiled.probs, cached.probs)
    assert recompiled.exit_layer.tolist() == cached.exit_layer.tolist()
    assert paddle_inference.raise_primitive_cache(16) == paddle_inference.PRIMITIVE_CACHE  # never lowered
    primitive_cache(16)
    monkeypatch.setenv(paddle_inference.PRIMITIVE_CACHE_VARIABLE, "16")  # the user's choice is left alone
    assert paddle_inference.raise_primitive_cache(4096) == 16


def test_what_it_cannot_run_is_named(tmp_path, tiny_exports):
    directory = tiny_exports[(1.0, True)]
    with pytest.raises(ConfigError, match="precision 'bf16' needs oneDNN on the CPU"):
        open_runtime(directory, "paddle-inference", precision="bf16", onednn=False)
    with pytest.raises(ConfigError, match=re.escape("precision 'int8' is not one of ['fp32', 'bf16'] for Paddle "
                                                    "Inference")):
        PaddleInferenceRuntime(directory, precision="int8")
    with pytest.raises(ConfigError, match="device 'tpu' is not 'cpu' or 'gpu'"):
        PaddleInferenceRuntime(directory, device="tpu")
    without = copy_export(tiny_exports, tmp_path)
    (without / "model.json").unlink()
    edit_export_file(without, "export.json", lambda raw: None)  # the manifest rewritten without it
    with pytest.raises(ArtifactError, match=r"copy has no model.json or model.pdmodel"):
        PaddleInferenceRuntime(without)


def test_small_batches_run_on_the_plain_kernels_below_native_below(tiny_exports, toy_data):
    directory = tiny_exports[(0.5, True)]
    predictor = Predictor(directory, "paddle-inference", threads=1)
    features, _ = predictor.encode(texts_of(toy_data, 12))
    ids = np.array([f.input_ids for f in features if len(f.input_ids) == len(features[0].input_ids)][:4])
    small, large = ids[:2], np.concatenate([ids] * 3)  # 2 rows, 12 rows
    plain = PaddleInferenceRuntime(directory, threads=1, onednn=False)
    onednn = PaddleInferenceRuntime(directory, threads=1)
    both = PaddleInferenceRuntime(directory, threads=1, native_below=4)
    assert both.native is not None and onednn.native is None
    for batch, same in ((small, plain), (large, onednn)):
        expected, got = same.run_batch(batch, np.zeros_like(batch), 0.3), both.run_batch(batch, np.zeros_like(batch), 0.3)
        for e, g in zip(expected, got):  # bitwise: the same kernels ran
            assert np.array_equal(e, g)
    for other in (small, large):  # and the two kernel sets agree in any case
        np.testing.assert_allclose(plain.run_batch(other, np.zeros_like(other), 0.3)[0],
                                   onednn.run_batch(other, np.zeros_like(other), 0.3)[0], atol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"native_below": -1}, "native_below -1 is not a whole number >= 0"),
    ({"native_below": "auto"}, "native_below 'auto' is not a whole number >= 0 \\(open_runtime measures 'auto'\\)"),
    ({"native_below": 8, "onednn": False}, "native_below needs oneDNN on the CPU in fp32"),
    ({"native_below": 8, "precision": "bf16"}, "native_below needs oneDNN on the CPU in fp32"),
])
def test_native_below_without_onednn_fp32_is_refused(tiny_exports, options, message):
    with pytest.raises(ConfigError, match=message):
        PaddleInferenceRuntime(tiny_exports[(0.5, True)], threads=1, **options)
