"""Mixed precision: the sweep's sensitivity of a product is the KL of the program with that product alone in int8,
most sensitive first; an export keeps exactly the sweep's top products float32; 0 keeps none and sweeps nothing."""
import json

import numpy as np
import pytest

from paddle_dynafast.config import ExportConfig
from paddle_dynafast.errors import ConfigError
from paddle_dynafast.model.loading import load_tokenizer
from paddle_dynafast.model.stage_info import StageInfo
from paddle_dynafast.runtime import export, quantize, sensitivity
from paddle_dynafast.runtime.onnx_runtime import session_options


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, tiny_dynafast_dir):
    """``{count: export directory}`` of the tiny model's exit loop at width 0.5, int8 with 0 and 3 products float32,
    swept over 40 training texts."""
    root = tmp_path_factory.mktemp("mixed")
    return {count: export.export_model(ExportConfig(tiny_dynafast_dir, root / str(count), width=0.5, int8=True,
                                                    int8_float_products=count, calibration_examples=40))
            for count in (0, 3)}


def _int8(directory):
    return json.loads((directory / "export.json").read_text())["int8"]


def _probs(path, batches):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["probs"], {"input_ids": ids, "token_type_ids": types,
                                                   "speed": np.zeros([1], "float32")})[0] for ids, types, _ in batches])


def test_the_sweep_covers_the_backbone_and_not_the_branches(mixed):
    sweep = _int8(mixed[3])["sweep"]
    assert len(sweep) == 2 * 6 + 2  # 2 layers x 6, pooler, classifier; the branch's 7 are not swept
    assert all(not row["layer"].startswith("branches") for row in sweep)
    assert {row["layer"] for row in sweep} >= {"backbone.bert.encoder.layers.0.linear2", "backbone.classifier"}


def test_a_products_sensitivity_is_the_kl_of_the_program_with_it_alone_in_int8(mixed, tiny_dynafast_dir, tmp_path):
    directory = mixed[3]
    sweep = _int8(directory)["sweep"]
    batches = export._calibration_batches(StageInfo.read(tiny_dynafast_dir), None, 40, load_tokenizer(directory), 16)
    reference = _probs(directory / "model.onnx", batches)
    for row in (sweep[0], sweep[-1]):
        quantize.quantize_onnx(directory / "model.onnx", tmp_path / "one.onnx", {row["weight"]: None}, "token")
        probs = _probs(tmp_path / "one.onnx", batches)
        assert row["mean_kl"] == pytest.approx(sensitivity.mean_kl(reference, probs), rel=1e-4, abs=1e-12)
        assert row["flips"] == int((probs.argmax(1) != reference.argmax(1)).sum())
    assert [r["mean_kl"] for r in sweep] == sorted((r["mean_kl"] for r in sweep), reverse=True)
    assert sweep[0]["mean_kl"] > 0


def test_mean_kl_against_a_hand_computed_value():
    p, q = np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([[0.25, 0.75], [0.9, 0.1]])
    expected = (0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)) / 2
    assert sensitivity.mean_kl(p, q) == pytest.approx(expected) and sensitivity.mean_kl(p, p) == 0


def test_an_export_keeps_the_sweeps_most_sensitive_products_float32(mixed):
    none, three = _int8(mixed[0]), _int8(mixed[3])
    assert none["float_products"] == [] and none["sweep"] == [] and none["matmuls"] == 21
    assert none["mixed_precision"] == "every product int8" and none["calibration_examples"] is None
    assert three["float_products"] == three["sweep"][:3] and three["matmuls"] == 18
    assert three["mixed_precision"].startswith("3 of 14 backbone products float32 (the most sensitive): ")


def test_a_negative_count_is_an_error(tiny_dynafast_dir, tmp_path):
    with pytest.raises(ConfigError, match="int8_float_products -1: give 0 or more"):
        ExportConfig(tiny_dynafast_dir, tmp_path / "x", int8=True, int8_float_products=-1)
    with pytest.raises(ValueError, match="give 0 or more"):
        sensitivity.float_products([], -1)
