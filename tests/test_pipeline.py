"""The pipeline: every stage into one run directory, a summary, and a second run that skips them all; then
benchmarks/compare.py on that run directory."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import paddle_dynafast as pdf
from paddle_dynafast.config import BranchConfig, DataConfig, TrainConfig

COMPARE = Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"


@pytest.fixture(scope="module")
def pipeline_run(tiny_pipeline_run):
    """The session's tiny pipeline run (conftest.py), int8 and timed: ``(config, result)``."""
    return tiny_pipeline_run


def test_pipeline_runs_every_stage_then_skips_them(pipeline_run):
    config, result = pipeline_run
    run = Path(config.output_dir)
    summary = json.loads((run / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert summary["teacher"]["dev_accuracy"] >= 0.9
    assert set(summary["widths"]) == {"teacher", "1.0", "0.75", "0.5", "0.25"}
    point = summary["operating_point"]
    assert point["dev_accuracy"] >= summary["widths"]["teacher"]["dev_accuracy"] - 0.02 - 1e-9
    assert [r["name"] for r in summary["latency"]["results"]] == [
        "teacher, no exit, fp32", f"width {point['width']:g}, speed {point['speed']:g}, int8"]
    assert (run / "export" / "model.int8.onnx").is_file()
    # the baseline is the very program the calibration timed the promise against: its files, manifest and all
    reference = run / "calibration" / "exports" / "full"
    assert (run / "export-full" / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()
    assert not pdf.ExportInfo.read(run / "export-full").exit_loop
    assert not (run / "export-full" / "model.int8.onnx").exists()
    # int8 is served, so the calibration measured the int8 program against the teacher, and the export ships it
    promise = summary["promise"]
    assert promise["measured_on"] == "onnxruntime int8" and promise["reference"] == "teacher"
    assert (promise["width"], promise["speed"]) == (point["width"], point["speed"])
    assert pdf.ExportInfo.read(run / "export").promise.to_json() == promise
    manifest = json.loads((run / "export" / "manifest.json").read_text())["files"]
    assert promise["program_files"] == {"model.int8.onnx": manifest["model.int8.onnx"]}
    assert "promise: width" in pdf.pipeline.summary_table(summary)
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


def test_compare_benchmarks_every_system_on_the_run(pipeline_run, toy_data):
    """benchmarks/compare.py: each system alone in its own process; the full model in every float32 runtime gives
    the teacher's test accuracy (oneDNN with the native kernels below its measured crossover too); ratios against
    the references."""
    config, result = pipeline_run
    run = Path(config.output_dir)
    command = [sys.executable, str(COMPARE), "--run", str(run), "--data-dir", str(toy_data), "--threads", "1",
               "--samples", "4", "--rounds", "1", "--only", "full model"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run / "benchmark" / "bench.json").read_text())
    results = {r["name"]: r for r in report["results"]}
    assert len(results) == 7 and report["references"][1] == "full model, ONNX Runtime fp32"
    (both,) = [name for name in results if name.startswith("full model, Paddle Inference oneDNN fp32, native below")]
    assert both.split()[-1].isdigit()  # the crossover, measured on the export
    assert report["references"][0] in ("full model, Paddle Inference native fp32",
                                       "full model, Paddle Inference oneDNN fp32", both)  # the fastest of the three
    teacher_test = result.summary["teacher"]["test_accuracy"]
    for name, r in results.items():
        if "fp32" in name or "dygraph" in name:
            assert r["accuracy"] == pytest.approx(teacher_test), name
        assert r["peak_memory_mb"] > 50 and r["throughput"] > 0
    onnx = results["full model, ONNX Runtime fp32"]
    assert onnx["against"]["full model, ONNX Runtime fp32"]["throughput_speedup"] == 1.0
    assert "| full model, ONNX Runtime int8 |" in (run / "benchmark" / "bench.md").read_text()

def test_a_folder_without_dev_gets_the_same_held_out_slice_everywhere(tmp_path, tiny_hf_dir, capsys):
    """The split seed travels with the data config: with --seed 7 every stage, calibrate and evaluate use the dev
    slice that seed 7 holds out, not the default seed's (which would overlap the training data)."""
    from helpers import write_sentiment_data
    from paddle_dynafast import cli, data

    folder = write_sentiment_data(tmp_path / "data", n_train=120, n_dev=1, n_test=24)
    (folder / "dev.txt").unlink()
    quick = TrainConfig(epochs=1, batch_size=16, lr=2e-3, seed=7, max_steps=2)
    config = pdf.PipelineConfig(
        output_dir=str(tmp_path / "run"), data=DataConfig(data_dir=str(folder), max_seq_len=16, split_seed=7),
        model_dir=str(tiny_hf_dir), finetune=quick, supernet=quick, distill=quick, widths=(1.0, 0.5),
        branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), importance_examples=16, bench_samples=0)
    pdf.run_pipeline(config)
    run = Path(config.output_dir)
    seven = data.fingerprint(data.load_splits(DataConfig(str(folder), split_seed=7))["dev"])
    assert seven != data.fingerprint(data.load_splits(DataConfig(str(folder)))["dev"])
    for stage in ("teacher", "supernet", "dynafast"):
        assert json.loads((run / stage / "stage.json").read_text())["dev_fingerprint"] == seven, stage
    assert json.loads((run / "calibration" / "calibration.json").read_text())["dev_fingerprint"] == seven
    # the command line's calibrate takes the seed from the model when it is not given
    assert cli.main(["calibrate", "--model", str(run / "dynafast"), "--data-dir", str(folder), "--threads", "1",
                     "--output", str(tmp_path / "cal")]) == 0
    assert json.loads((tmp_path / "cal" / "calibration.json").read_text())["dev_fingerprint"] == seven


def test_widths_are_checked_before_the_teacher_trains(tmp_path, tiny_hf_dir, toy_data):
    config = pdf.PipelineConfig(output_dir=str(tmp_path / "run"), data=DataConfig(data_dir=str(toy_data)),
                                model_dir=str(tiny_hf_dir), widths=(1.0, 0.3))
    with pytest.raises(ValueError, match="width 0.3 keeps 1.2 of 4 heads"):
        pdf.run_pipeline(config)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="max_accuracy_drop must be >= 0 points, got -1"):
        pdf.PipelineConfig(output_dir="o", data=DataConfig("d"), max_accuracy_drop=-1)


def load_report():
    import importlib.util

    spec = importlib.util.spec_from_file_location("report", COMPARE.with_name("report.py"))
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    return report


def copy_run(config, target: Path) -> Path:
    """The pipeline's own run, without what benchmarks/compare.py added to it (another test of this module)."""
    import shutil

    return shutil.copytree(config.output_dir, target, ignore=shutil.ignore_patterns("benchmark"), symlinks=True)


def test_report_shows_the_intervals_and_promises_of_the_run(pipeline_run, tmp_path):
    report = load_report()
    config, _ = pipeline_run
    copy_run(config, tmp_path / "runs" / "sst2")
    text = "\n".join(report.dataset_section(report.DATASETS[0], tmp_path / "runs", tmp_path))
    for expected in ("Δ dev vs teacher [95 % CI] | McNemar p (dev)", "paired-bootstrap 95 % interval and McNemar's p",
                     "### PABEE patience against entropy at equal FLOPs", "promised dev drop", "budget held on test",
                     "### The shipped export and its promise", "Stage times of the pipeline run: finetune "):
        assert expected in text
    # the runs a pipeline run does not make are one line each, naming the command that makes them
    assert "*Not in these runs: the branch ablations. Made by `make reproduce`, step `sst2-ablations`" in text
    assert "*Not in these runs: the deployment benchmark. Made by `make reproduce`, step `sst2-benchmark`" in text
    targets = "\n".join(report.targets(tmp_path / "runs"))
    assert "| accuracy | width 0.25 within 2.5 dev points of the teacher |" in targets
    # the int8 run is calibrated on measured time
    assert "| certified speed | the point calibrated on onnxruntime int8 (budget 2 points, confidence 0.9): test drop " \
           "within the budget |" in targets


README = """# a project

text above
<!-- headline -->
| old | table |
| --- | --- |
| x | 1.23 |
<!-- /headline -->
text below
"""


def run_report(*args):
    return subprocess.run([sys.executable, str(COMPARE.with_name("report.py")), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", ["sst2", "demo"])
def test_report_writes_results_whole_and_the_readme_headline_from_it(pipeline_run, tmp_path, name):
    """The tiny run as the full SST-2 run, or as the demo: either gives the headline; every other section is one
    line naming the command that makes it; no issue number; the README's headline numbers are all in results.md."""
    import re

    config, _ = pipeline_run
    runs, docs = tmp_path / "runs", tmp_path / "docs"
    copy_run(config, runs / name)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    done = run_report("--runs", runs, "--output", docs, "--readme", readme)
    assert done.returncode == 0, done.stderr
    text = (docs / "results.md").read_text()
    assert text.startswith("# Results\n\nWritten whole by `benchmarks/report.py")
    assert not re.search(r"#\d", text), re.search(r".{40}#\d.{40}", text).group(0)
    for step in ("trec6", "douban", "distributed-throughput"):
        assert re.search(rf"^\*Not in these runs: .*\. Made by `make reproduce`, step `{step}`.*\*$", text, re.M), step
    assert sorted(p.name for p in (docs / "figures").iterdir()) == [f"{name}-speed.png"]
    # the run's summary as the report read it (another test of this module runs the pipeline again, which times the
    # exports again)
    teacher, adaptive = json.loads((runs / name / "summary.json").read_text())["latency"]["results"]
    rewritten = readme.read_text()
    assert rewritten.startswith("# a project\n\ntext above\n<!-- headline -->\n| system | test acc |")
    assert rewritten.endswith("<!-- /headline -->\ntext below\n") and "| x | 1.23 |" not in rewritten
    row = f"| {adaptive['latency_ms_median']:.2f} ms | {adaptive['throughput']:.0f}/s |"
    assert row in rewritten and row in text
    assert run_report("--output", docs, "--check-readme", readme).returncode == 0
    # a number of the README's table that results.md does not hold is named
    readme.write_text(rewritten.replace(row, "| 0.01 ms | 99999/s |"))
    check = run_report("--output", docs, "--check-readme", readme)
    assert check.returncode == 1 and "0.01 ms is not in" in check.stdout and "99999/s is not in" in check.stdout
    # written whole: the same runs give the same page
    assert run_report("--runs", runs, "--output", docs).returncode == 0
    assert (docs / "results.md").read_text() == text


def test_summary_table_puts_the_exported_models_side_by_side(pipeline_run):
    _, result = pipeline_run
    s = result.summary
    table = pdf.pipeline.summary_table(s)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 1 + 4 + 1  # header, rule, teacher, four supernet widths, the calibrated point
    teacher, adaptive = s["latency"]["results"]
    assert rows[2].startswith(f"| teacher (exported, no exit) | {100 * s['teacher']['dev_accuracy']:.2f} | "
                              f"{100 * s['teacher']['test_accuracy']:.2f} | 1.00x | "
                              f"{teacher['latency_ms_median']:.2f} ms | {teacher['throughput']:.0f}/s |")
    point = s["operating_point"]
    assert rows[-1] == (f"| **width {point['width']:g}, speed {point['speed']:g}** (calibrated, exported; "
                        f"onnxruntime int8) | {100 * point['dev_accuracy']:.2f} | {100 * adaptive['accuracy']:.2f} "
                        f"({100 * (adaptive['accuracy'] - teacher['accuracy']):+.2f}) "
                        f"| {point['dev_flops_speedup']:.2f}x | {adaptive['latency_ms_median']:.2f} ms "
                        f"({adaptive['ratios']['latency_speedup']:.2f}x) | {adaptive['throughput']:.0f}/s "
                        f"({adaptive['ratios']['throughput_speedup']:.2f}x) |")
    assert table.splitlines()[-1].startswith("stages: finetune ")
    untimed = pdf.pipeline.summary_table({**s, "latency": None}).splitlines()  # bench_samples=0
    calibrated = [line for line in untimed if line.startswith("| **width")]
    assert untimed[2].endswith("| 1.00x |  |  |") and calibrated[0].endswith("x |  |  |")
    assert table.splitlines()[-3].startswith(f"promise: width {point['width']:g}, speed {point['speed']:g} on "
                                             "onnxruntime int8: at most 2 points below the teacher")
