"""benchmarks/int8_levers.py run as its docstring says, on the tiny exports at width 0.5 (plain; the exit loop is
marked slow): every lever is a row, float32 agrees with itself, the per-token rows are batch independent, the
mixed-precision rows keep the sweep's most sensitive products in float32, the distilled row quantizes every
product; and its SmoothQuant rewrite alone leaves
the float32 model's answers as they were."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "int8_levers.py"


def _run(export, data_dir, output, *extra):
    done = subprocess.run([sys.executable, str(SCRIPT), "--export", str(export), "--data-dir", str(data_dir),
                           "--output", str(output), "--threads", "1", "--rounds", "1", "--alone", "20",
                           "--speed-texts", "32", "--latency-texts", "4", "--calibration-texts", "16",
                           "--keep", "1,3", "--qad-steps", "3", "--qad-texts", "40", *extra], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.with_suffix(".json").read_text()), output.read_text(), done


@pytest.mark.parametrize("exit_loop", [False, pytest.param(True, marks=pytest.mark.slow)])  # the loop: ~20 s
def test_every_lever_is_measured(tmp_path, tiny_exports, toy_data, exit_loop):
    report, table, done = _run(tiny_exports[(0.5, exit_loop)], toy_data, tmp_path / "levers.md",
                               "--speed", "0.3")
    rows = {row["name"]: row for row in report["levers"]}
    products = report["export"]["products"]
    assert list(rows) == ["float32", "per tensor (dynamic, the old default)",
                          "per token, 7-bit weights, every product int8", "per token, 8-bit weights",
                          "per token, the 1 most sensitive products float32",
                          "per token, the 3 most sensitive products float32", "per token + SmoothQuant alpha 0.5",
                          "per token + QAD 3 steps"]
    # the plain model: 2 layers x 6 products + pooler + classifier; the exit loop adds its branches' products
    assert products == 14 if not exit_loop else products > 14
    assert [row["products"] for row in rows.values()] == [0, products, products, products, products - 1,
                                                           products - 3, products, products]
    fp32 = rows["float32"]
    assert fp32["flips"] == 0 and fp32["alone_labels_changed"] == 0 and fp32["alone_max_prob_difference"] < 1e-5
    assert report["data"] == {"dir": str(toy_data), "dev": 48, "test": 48, "alone": 20, "calibration": 16, "seed": 0,
                              "speed_texts": 32, "latency_texts": 4}
    assert report["speed"] == (0.3 if exit_loop else 0.0)
    for row in rows.values():
        assert 0 <= row["flips"] <= 96 and row["flip_rate"] == row["flips"] / 96
        assert row["test_flips"] <= row["flips"] and 0 <= row["dev_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
        assert row["texts_per_second"] > 0 and row["ms_per_text"] > 0
        if "per tensor" not in row["name"]:  # every per-token row: a text's answer is its own
            assert row["alone_labels_changed"] == 0 and row["alone_exit_layers_changed"] == 0
            assert row["alone_max_prob_difference"] <= 1e-5, row["name"]
    if not exit_loop:
        assert all(row["mean_exit_layer"] == 2 for row in rows.values())
    sweep = report["sweep"]
    backbone = 14  # 2 layers x 6, pooler, classifier: the branches' products are not swept (as in the export)
    assert len(sweep) == backbone and len({row["weight"] for row in sweep}) == backbone
    assert [row["mean_kl"] for row in sweep] == sorted((row["mean_kl"] for row in sweep), reverse=True)
    assert all(row["layer"] for row in sweep) and sweep[0]["mean_kl"] > 0
    assert report["smooth"]["muls"] >= 1 and report["smooth"]["groups"] >= 1
    assert table.startswith(f"# int8 levers: {tiny_exports[(0.5, exit_loop)]}")
    qad = report["qad"]  # 40 texts: batches of 32 and 8, cycled
    assert (qad["steps"], qad["texts"], len(qad["loss"])) == (3, 40, 3) and all(loss >= 0 for loss in qad["loss"])
    assert "INDICATIVE ONLY" in table and "Quantization-aware distillation: 3 steps of AdamW" in table
    assert table.count("\n| per token") == 6 and f"| 1 | {sweep[0]['layer']} | {sweep[0]['weight']} |" in table
    assert done.stdout.rstrip().endswith(f"-> {tmp_path / 'levers.md'} and {tmp_path / 'levers.json'}")


def test_smoothing_keeps_the_float32_model_and_shares_one_scale_per_input(tmp_path, tiny_exports):
    """``smooth`` alone: the float32 model it writes gives float32's probabilities (the scales cancel), query, key and
    value share one ``Mul``, and a product's weight rows are scaled by ``s``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("int8_levers", SCRIPT)
    levers = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = levers  # its dataclasses look their module up
    spec.loader.exec_module(levers)
    source = tiny_exports[(0.5, False)] / "model.onnx"
    weights = levers.weight_constants(onnx.load(str(source)))
    rng = np.random.default_rng(0)
    maxima = {name: rng.uniform(0.1, 20, size=w.shape[0]).astype("float32") for name, w in weights.items()}
    info = levers.smooth(source, tmp_path / "smooth.onnx", maxima, alpha=0.5)
    # per layer: q/k/v share their input, then the output product, the two FFN products; then pooler, classifier
    assert info == {"groups": 2 * 4 + 2, "muls": 2 * 4 + 2}
    smoothed = levers.weight_constants(onnx.load(str(tmp_path / "smooth.onnx")))
    name = next(iter(weights))
    ratio = smoothed[name] / np.where(weights[name] == 0, 1, weights[name])  # [in, out]: s_j along each row
    assert np.allclose(ratio, ratio[:, :1], rtol=1e-5) and not np.allclose(ratio, 1)
    ids = np.array([[2, 5, 7, 9, 3], [2, 8, 3, 0, 0]], dtype="int64")
    feeds = {"input_ids": ids, "token_type_ids": np.zeros_like(ids)}
    run = [onnxruntime.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
           for p in (source, tmp_path / "smooth.onnx")]
    np.testing.assert_allclose(run[1], run[0], rtol=0, atol=1e-5)
