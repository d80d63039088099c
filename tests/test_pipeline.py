"""The pipeline: every stage into one run directory, a summary, and a second run that skips them all."""
import json

import pytest

import paddle_dynafast as pdf
from paddle_dynafast.config import BranchConfig, DataConfig, TrainConfig


def test_pipeline_runs_every_stage_then_skips_them(tmp_path, toy_data, tiny_hf_dir):
    config = pdf.PipelineConfig(
        output_dir=str(tmp_path / "run"), data=DataConfig(data_dir=str(toy_data), max_seq_len=16),
        model_dir=str(tiny_hf_dir), finetune=TrainConfig(epochs=6, batch_size=16, lr=2e-3, seed=3),
        supernet=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=1),
        distill=TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=1),
        branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), importance_examples=32,
        max_accuracy_drop=2.0, bench_samples=8)
    result = pdf.run_pipeline(config)
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert summary["teacher"]["dev_accuracy"] >= 0.9
    assert set(summary["widths"]) == {"teacher", "1.0", "0.75", "0.5", "0.25"}
    point = summary["operating_point"]
    assert point["dev_accuracy"] >= summary["widths"]["teacher"]["dev_accuracy"] - 0.02 - 1e-9
    assert [r["name"] for r in summary["latency"]["results"]] == [
        "teacher, no exit", f"width {point['width']:g}, speed {point['speed']:g}"]
    for name in ("teacher", "supernet", "dynafast"):
        assert json.loads((run / name / "stage.json").read_text())["complete"]
    pdf.Predictor(run / "export", threads=1)  # verifies the manifest
    assert (run / "evaluation" / "evaluation.png").is_file()
    again = pdf.run_pipeline(config)
    assert all(seconds < 5 for seconds in again.summary["stage_seconds"].values()), again.summary["stage_seconds"]
    assert again.summary["operating_point"] == summary["operating_point"]


def test_pipeline_rejects_bad_widths(tmp_path):
    with pytest.raises(ValueError, match=r"width 1.5 is not in \(0, 1\]"):
        pdf.PipelineConfig(output_dir=str(tmp_path), data=DataConfig("d"), widths=(1.5, 1.0))
