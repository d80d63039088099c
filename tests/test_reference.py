"""Behaviour unchanged: the tiny pipeline's numbers equal the reference recorded before the package was reorganised.

The reference (``fixtures/tiny_pipeline_reference.json``) holds what a run of every step produces on the toy task:
the stages' accuracies, the supernet's widths and FLOPs, every point of the evaluation grid, the calibrated points,
every branch's probabilities on test at every width, and the exported program's answers. Accuracies, exit layers
and FLOPs must be equal; probabilities equal within 1e-4 (another CPU may round a last bit differently). A change
that is meant to change these numbers rewrites the reference on purpose and says so in its commit:

    .venv/bin/python tests/test_reference.py --write
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "tiny_pipeline_reference.json"
SPEEDS = (0.0, 0.3, 1.0)


def reference_config(output_dir: Path, data_dir: Path, model_dir: Path):
    import paddle_dynafast as pdf
    from paddle_dynafast.config import BranchConfig, DataConfig, TrainConfig

    return pdf.PipelineConfig(
        output_dir=str(output_dir), data=DataConfig(data_dir=str(data_dir), max_seq_len=16), model_dir=str(model_dir),
        finetune=TrainConfig(epochs=6, batch_size=16, lr=2e-3, seed=3),
        supernet=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=1),
        distill=TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=1),
        branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), importance_examples=32,
        max_accuracy_drop=2.0, bench_samples=0)  # on FLOPs: a calibration on measured time chooses by the clock


def run_numbers(root: Path) -> dict:
    """What the reference holds, read from the tiny pipeline run in ``root`` (with its data in ``root/data``)."""
    import paddle_dynafast as pdf
    from helpers import texts_of

    run = root / "run"
    summary = json.loads((run / "summary.json").read_text())
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    calibration = json.loads((run / "calibration" / "calibration.json").read_text())
    probs = np.load(run / "evaluation" / "layer_probs.npz")
    texts = texts_of(root / "data", 48)
    predictor = pdf.Predictor(run / "export", runtime="paddle-inference", threads=1)
    answers = {}
    for speed in SPEEDS:
        result = predictor.predict(texts, speed=speed)
        answers[str(speed)] = {"probs": np.round(result.probs, 6).tolist(), "exit_layer": result.exit_layer.tolist()}
    stages = {name: json.loads((run / name / "metrics.json").read_text()) for name in ("teacher", "dynafast")}
    return {
        "teacher_history": [h["dev_accuracy"] for h in stages["teacher"]["history"]],
        "teacher": {k: summary["teacher"][k] for k in ("dev_accuracy", "test_accuracy")},
        "widths": summary["widths"],
        "operating_point": summary["operating_point"],
        "test_at_operating_point": summary["test_at_operating_point"],
        "evaluation_points": evaluation["points"],
        "patience_points": evaluation["patience_points"],
        "calibration": {k: calibration[k] for k in ("full_model", "fewest_flops_within_accuracy_budget")},
        "layer_probs": {k: np.round(probs[k], 6).tolist() for k in probs.files if k.startswith("width_")},
        "exported": answers,
    }


def make_run(root: Path) -> Path:
    import paddle_dynafast as pdf
    from helpers import tiny_hf_weights, write_hf_dir, write_sentiment_data

    data = write_sentiment_data(root / "data", n_train=200, n_dev=48, n_test=48)
    pretrained = write_hf_dir(root / "tiny_hf", tiny_hf_weights(seed=0))
    pdf.run_pipeline(reference_config(root / "run", data, pretrained))
    return root


def _compare(got, want, where: str = "") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            _compare(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list) and want and isinstance(want[0], (list, float)):
        np.testing.assert_allclose(np.asarray(got, dtype="float64"), np.asarray(want, dtype="float64"), atol=1e-4,
                                   rtol=1e-6, err_msg=where)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-4 if "delta" in where or "_p" in where else 1e-12), where
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_the_tiny_pipeline_gives_the_reference_numbers(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    got = run_numbers(make_run(tmp_path))
    _compare(got, json.loads(REFERENCE.read_text()))


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory() as tmp:
        numbers = run_numbers(make_run(Path(tmp)))
    REFERENCE.write_text(json.dumps(numbers, indent=1) + "\n")
    print(f"-> {REFERENCE}")
