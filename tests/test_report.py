"""benchmarks/report.py: the comparisons behind the targets table and the branch ablations, by hand."""
import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("report", Path(__file__).resolve().parents[1] / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def point(width, speed, accuracy, speedup):
    return {"width": width, "speed": speed, "accuracy": accuracy, "flops_speedup": speedup, "mean_exit_layer": 1.0}


BASE = {"points": [point(1.0, 0.0, 0.90, 1.0), point(1.0, 0.5, 0.88, 3.0), point(1.0, 1.0, 0.80, 5.0),
                   point(0.5, 0.0, 0.86, 2.0), point(0.5, 0.5, 0.85, 4.0), point(0.5, 1.0, 0.79, 6.0)]}


def test_most_accurate_with_a_speedup():
    assert report.most_accurate(BASE["points"], 3.0) == point(1.0, 0.5, 0.88, 3.0)
    assert report.most_accurate(BASE["points"], 5.5) == point(0.5, 1.0, 0.79, 6.0)
    assert report.most_accurate(BASE["points"], 7.0) is None


def test_compare_at_same_speed_and_same_speedup():
    # width 1.0 speed 0.5: less accurate than BASE (0.87 < 0.88) but at 2.0x, where BASE's curve is at
    # 0.90 + (0.88 - 0.90) / 2 = 0.89 >= 0.87; width 0.5 speed 0.5: more accurate (0.855 > 0.85) at 5.0x, where
    # BASE is at (0.85 + 0.79) / 2 = 0.82 < 0.855
    other = {"points": [point(1.0, 0.0, 0.90, 1.0), point(1.0, 0.5, 0.87, 2.0), point(1.0, 1.0, 0.80, 5.0),
                        point(0.5, 0.5, 0.855, 5.0)]}
    c = report.compare(BASE, other)
    assert c["same_speed"] == (1, 2)
    assert c["same_speedup"] == (1, 2)
    assert c["mean_gap_points"] == pytest.approx(100 * ((0.89 - 0.87) + (0.82 - 0.855)) / 2)


def test_compare_skips_speedups_outside_the_base_curve():
    other = {"points": [point(1.0, 0.5, 0.70, 9.0)]}
    c = report.compare(BASE, other)
    assert c["same_speed"] == (1, 1) and c["same_speedup"] == (0, 0)


def test_intervals_and_patience_by_hand():
    assert report.ci({"delta": -0.0183, "low": -0.03, "high": -0.0069}) == "-1.83 [-3.00, -0.69]"
    assert report.ci(None) == ""
    evaluation = {"patience_points": [
        {"width": 1.0, "patience": 2, "accuracy": 0.88, "flops_speedup": 2.5, "entropy_speed": 0.1,
         "entropy_accuracy": 0.885, "entropy_flops_speedup": 2.6, "vs_entropy": -0.005, "vs_entropy_low": -0.01,
         "vs_entropy_high": 0.0, "vs_entropy_p": 0.25},
        {"width": 1.0, "patience": 1, "accuracy": 0.86, "flops_speedup": 4.0, "entropy_speed": None}],
        "patience_vs_entropy": {"1.0": {"compared": 2, "base_better_or_equal": 1, "mean_gap_points": 0.3}}}
    lines = report.patience_section(evaluation)
    assert lines[2] == ("| 1 | 2 | 88.00 / 2.50x | speed 0.1: 88.50 / 2.60x | -0.50 [-1.00, +0.00] (p 0.25) |")
    assert lines[3] == "| 1 | 1 | 86.00 / 4.00x | none as cheap |  |"
    assert "at least as accurate at 1 of 2 patience points, by +0.30 points" in lines[-1]
    assert report.patience_section({"points": []}) == []


def test_the_branches_are_named_by_the_objective_they_were_trained_with(tmp_path):
    import json

    assert report.trained_by(tmp_path) == "self-distilled"  # a run older than the setting
    (tmp_path / "dynafast").mkdir()
    (tmp_path / "dynafast" / "stage.json").write_text(json.dumps({"config": {"objective": "mix"}}))
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "evaluation.json").write_text(json.dumps(BASE))
    lines = report.ablation_section(tmp_path, [1.0])
    assert lines[0] == "| width | speed | shared branches, half KL, half labels (default) |"


def test_an_empty_runs_directory_gives_one_line_per_section(tmp_path):
    """Nothing to read: every section says what is missing and which command makes it; no figure, no issue number."""
    import re

    text = report.render(tmp_path, tmp_path / "figures")
    assert text.startswith("# Results\n")
    missing = [line for line in text.splitlines() if line.startswith("*Not in these runs: ")]
    assert len(missing) == 11  # headline, targets, sst2, its levers, int8 levers, data parallel, trec6, its levers,
    # trec6 with a holdout, douban, demo
    assert all(". Made by `make " in line and line.endswith("*") for line in missing)
    assert "Made by `make demo`" in missing[-1]
    assert not re.search(r"#\d", text)
    assert list((tmp_path / "figures").iterdir()) == []


def test_the_numbers_of_the_headline_table_are_looked_up_in_the_results():
    readme = "intro 4.5\n<!-- headline -->\n| a | b 1.5 |\n| --- | --- |\n| x 2.05x | 3.10 ms, 250/s, −0.49 |\n" \
             "<!-- /headline -->\nafter 9.9\n"
    start, end = report.readme_block(readme)
    block = readme[start:end]
    assert block.startswith("| a | b 1.5 |") and block.endswith("−0.49 |\n")
    # the header row's numbers and the text outside the block are not checked; a minus sign is a minus
    assert report.numbers_missing(block, "2.05x and 3.10 ms and 250/s and -0.49") == []
    assert report.numbers_missing(block, "2.05x 3.10 ms") == ["250/s", "-0.49"]
    with pytest.raises(SystemExit, match="no <!-- headline --> ... <!-- /headline --> block"):
        report.readme_block("no markers")


def test_every_branch_against_its_final_classifier_by_hand(tmp_path):
    """The branch table: accuracy and agreement with the final classifier of each width, from layer_probs.npz."""
    import numpy as np

    from paddle_dynafast.analysis.evaluate import SplitProbabilities

    one = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.3, 0.7], [0.1, 0.9]], [[0.6, 0.4], [0.8, 0.2]],
                    [[0.4, 0.6], [0.3, 0.7]]])  # 4 texts, 2 layers: the branch differs from the final on text 1
    half = one[:, ::-1]  # width 0.5: the layers swapped
    SplitProbabilities({1.0: one, 0.5: half}, np.array([1, 1, 0, 1]), np.array([5, 5, 5, 5])).save(
        tmp_path / "layer_probs.npz")
    lines = report.classifier_section(tmp_path / "layer_probs.npz")
    assert lines[2:] == ["| width | layer 1 | layer 2 |", "| --- | --- | --- |",
                         "| 1 | 75.00 / 75.00 | 100.00 / 100.00 |", "| 0.5 | 100.00 / 75.00 | 75.00 / 100.00 |"]
