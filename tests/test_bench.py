"""Benchmarks: interleaved timing, accuracy and FLOPs of each system, ratios against the first; the command."""
import dataclasses
import json
import logging

import numpy as np
import pytest

from helpers import texts_of
from paddle_dynafast import cli
from paddle_dynafast.config import BenchConfig, BenchSystem, RuntimeConfig
from paddle_dynafast.data.encoding import Features
from paddle_dynafast.errors import DataError
from paddle_dynafast.runtime import bench
from paddle_dynafast.runtime.predictor import Predictor


def _system(name, labels_of, flops_per_sample, exit_layer=2):
    def run(ids, types):
        probs = np.zeros((len(ids), 2), "float32")
        probs[np.arange(len(ids)), np.asarray(labels_of(ids), dtype="int64")] = 1
        return probs, np.full(len(ids), exit_layer)

    return bench.System(name, run, lambda tokens, exits: np.full(len(tokens), flops_per_sample, "float64"))


def test_measure_reports_accuracy_flops_and_ratios_against_the_first():
    features = [Features([2, 5 + i % 3, 3], [0, 0, 0], i % 2, False) for i in range(20)]
    gold = [f.label for f in features]
    right = _system("right", lambda ids: ids[:, 1] % 2 == 0, 100.0)  # label 1 iff the token id is even
    wrong = _system("always 0", lambda ids: np.zeros(len(ids), "int64"), 25.0, exit_layer=1)
    results = bench.measure([right, wrong], features, gold, 0, samples=4, batch_size=8, rounds=2)
    expected = np.mean([(f.input_ids[1] % 2 == 0) == g for f, g in zip(features, gold)])
    assert results[0].accuracy == pytest.approx(expected) and results[1].accuracy == pytest.approx(0.5)
    assert results[1].ratios["flops_speedup"] == 4.0 and results[1].mean_exit_layer == 1.0
    assert results[0].ratios["throughput_speedup"] == 1.0 and results[0].latency_ms_median > 0
    assert results[1].ratios["accuracy_points"] == pytest.approx(100 * (0.5 - expected), abs=0.01)
    table = bench.markdown(results, 8)
    assert "| always 0 | 50.00 |" in table and "4.00x" in table
    with pytest.raises(ValueError, match="no systems to measure"):
        bench.measure([], features, gold, 0)


def test_batches_are_grouped_by_length_and_cover_every_row():
    features = [Features([2] + [5] * n + [3], [0] * (n + 2), 0, False) for n in (1, 7, 3, 7, 2)]
    batches = bench.batches(features, 0, 2)
    rows = np.concatenate([r for _, _, r in batches])
    assert sorted(rows.tolist()) == [0, 1, 2, 3, 4]
    assert [ids.shape for ids, _, _ in batches] == [(2, 9), (2, 5), (1, 3)]


def test_run_bench_returns_the_typed_result_it_writes(tmp_path, tiny_exports, toy_data, caplog):
    config = BenchConfig((BenchSystem("full", tiny_exports[(1.0, False)]),
                          BenchSystem("adaptive", tiny_exports[(0.5, True)], speed=0.3)), toy_data, tmp_path / "b",
                         samples=4, batch_size=16, rounds=1, runtime=RuntimeConfig("paddle-inference", threads=1))
    with caplog.at_level(logging.WARNING, logger="paddle_dynafast.runtime.bench"):
        result = bench.run_bench(config)
    assert "full, adaptive run on oneDNN in one process" in caplog.text  # compare.py times each alone
    assert [r.name for r in result.results] == ["full", "adaptive"]
    assert (result.split, result.examples, result.threads, result.batch_size) == ("test", 48, 1, 16)
    expected = Predictor(tiny_exports[(0.5, True)], "paddle-inference", threads=1).predict(texts_of(toy_data, 48),
                                                                                           speed=0.3)
    gold = [int(line.split(" ", 1)[0]) for line in (toy_data / "test.txt").read_text().splitlines()]
    adaptive = result.results[1]
    assert adaptive.accuracy == pytest.approx(np.mean(expected.label_ids == np.array(gold)))
    assert adaptive.mean_exit_layer == pytest.approx(expected.exit_layer.mean())
    assert result.results[0].mean_exit_layer == 2 and adaptive.note.startswith("width 0.5, paddle-inference fp32, ")
    written = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert written == json.loads(json.dumps(result.to_json()))
    assert (written["runtime"], written["precision"], written["onednn"]) == ("paddle-inference", "fp32", True)
    assert set(written["machine"]) == {"cpus", "processor", "python"}
    assert (tmp_path / "b" / "bench.md").read_text() == result.markdown() == bench.markdown(result.results, 16)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="paddle_dynafast.runtime.bench"):
        bench.run_bench(dataclasses.replace(config, output_dir=tmp_path / "plain",
                                            runtime=RuntimeConfig("paddle-inference", threads=1, onednn=False)))
    assert "oneDNN" not in caplog.text
    (tmp_path / "only-train").mkdir()
    (tmp_path / "only-train" / "train.txt").write_text((toy_data / "train.txt").read_text())
    with pytest.raises(DataError, match=r"only-train has no test split"):
        bench.run_bench(BenchConfig(config.systems[:1], tmp_path / "only-train", tmp_path / "c",
                                    runtime=config.runtime))

def test_bench_command(tmp_path, tiny_exports, toy_data, capsys):
    code = cli.main(["bench", "--system", f"full={tiny_exports[(1.0, False)]}",
                     "--system", f"adaptive={tiny_exports[(0.5, True)]}@0.3", "--data-dir", str(toy_data),
                     "--samples", "10", "--rounds", "2", "--batch-size", "16", "--threads", "1",
                     "--output", str(tmp_path / "bench")])
    assert code == 0
    report = json.loads((tmp_path / "bench" / "bench.json").read_text())
    full, adaptive = report["results"]
    assert full["ratios"]["flops_speedup"] == 1.0 and full["name"] == "full"
    expected = Predictor(tiny_exports[(0.5, True)], threads=1).predict(texts_of(toy_data, 48), speed=0.3)
    gold = [int(line.split(" ", 1)[0]) for line in (toy_data / "test.txt").read_text().splitlines()]
    assert adaptive["accuracy"] == pytest.approx(np.mean(expected.label_ids == np.array(gold)))
    assert adaptive["mean_exit_layer"] == pytest.approx(expected.exit_layer.mean())
    assert adaptive["ratios"]["flops_speedup"] > 1 and adaptive["latency_ms_median"] > 0
    assert "| adaptive |" in capsys.readouterr().out
    assert cli.main(["bench", "--system", "nonsense", "--data-dir", str(toy_data), "--output", str(tmp_path)]) == 2


@pytest.mark.parametrize("flags, message", [
    (["--samples", "0"], "samples must be a whole number >= 1, got 0"),
    (["--rounds", "0"], "rounds must be a whole number >= 1, got 0"),
    (["--batch-size", "-1"], "batch_size must be a whole number >= 1, got -1"),
])
def test_bench_counts_are_checked_before_any_work(tmp_path, tiny_exports, toy_data, capsys, flags, message):
    code = cli.main(["bench", "--system", f"a={tiny_exports[(1.0, True)]}", "--data-dir", str(toy_data),
                     "--output", str(tmp_path / "b"), *flags])
    assert code == 2 and capsys.readouterr().err.strip().splitlines() == [f"paddle-dynafast bench: error: {message}"]
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("speed", ["abc", "nan", "inf", "1.5", ""])
def test_a_bad_speed_names_the_flag(tmp_path, tiny_exports, toy_data, capsys, speed):
    system = f"x={tiny_exports[(1.0, True)]}@{speed}"
    code = cli.main(["bench", "--system", system, "--data-dir", str(toy_data), "--output", str(tmp_path / "b")])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"paddle-dynafast bench: error: --system {system!r}: the speed after @ must be a number in [0, 1], "
        f"got {speed!r}"]


def test_bench_replaces_its_report_only_with_overwrite(tmp_path, tiny_exports, toy_data, capsys):
    args = ["bench", "--system", f"a={tiny_exports[(1.0, False)]}", "--data-dir", str(toy_data), "--samples", "2",
            "--rounds", "1", "--threads", "1", "--output", str(tmp_path / "b")]
    assert cli.main(args) == 0
    assert cli.main(args) == 2
    assert "holds an earlier bench output; pass --overwrite to replace it" in capsys.readouterr().err
    assert cli.main(args + ["--overwrite"]) == 0
    with pytest.raises(ValueError, match="samples must be a whole number >= 1, got 0"):
        bench.measure([_system("a", lambda ids: np.zeros(len(ids)), 1.0)], [Features([2, 3], [0, 0], 0, False)],
                      [0], 0, samples=0)
