"""Choosing the runtime by measurement: the candidates per precision, the fastest chosen, the choice remembered."""
import json

import pytest

from paddle_dynafast.errors import ConfigError
from paddle_dynafast.runtime import choose
from paddle_dynafast.runtime.export_info import ExportInfo


def test_candidates_per_precision(tiny_exports):
    with_onnx, without = tiny_exports[(0.5, True)], tiny_exports[(1.0, True)]
    assert [c.name for c in choose.candidates(with_onnx)] == [
        "paddle-inference fp32 onednn=False", "paddle-inference fp32 onednn=True", "onnxruntime fp32"]
    assert [c.name for c in choose.candidates(without)] == [
        "paddle-inference fp32 onednn=False", "paddle-inference fp32 onednn=True"]
    assert [c.name for c in choose.candidates(with_onnx, "int8")] == ["onnxruntime int8"]
    assert [c.name for c in choose.candidates(with_onnx, "bf16")] == ["paddle-inference bf16 onednn=True"]
    with pytest.raises(ConfigError, match="has no model.int8.onnx: export it with --int8"):
        choose.candidates(without, "int8")


def test_the_fastest_is_chosen_and_remembered(tiny_exports, runtime_cache, monkeypatch):
    directory = tiny_exports[(0.5, True)]
    fake = {"paddle-inference fp32 onednn=False": 3.0, "paddle-inference fp32 onednn=True": 2.0,
            "onnxruntime fp32": 1.0}
    measured = []

    def fake_measure(directory, found, batches, threads=2, speed=0.0, rounds=3):
        measured.append(len(batches))
        return [choose.Timing(c, fake[c.name]) for c in found]

    monkeypatch.setattr(choose, "measure", fake_measure)
    best, timings = choose.choose(directory, threads=1)
    assert best.name == "onnxruntime fp32" and len(timings) == 3 and measured == [4]
    remembered = json.loads(runtime_cache.read_text())
    (entry,) = remembered.values()
    assert entry["candidate"] == {"runtime": "onnxruntime", "precision": "fp32", "options": {}}
    again, timings = choose.choose(directory, threads=1)
    assert again == best and timings == [] and measured == [4]  # not measured again
    choose.choose(directory, threads=1, objective="latency")  # another objective is another measurement
    assert measured == [4, 24]
    with pytest.raises(ConfigError, match="objective 'speed' is not one of"):
        choose.choose(directory, objective="speed")


def test_a_runtime_that_fails_is_reported_not_chosen(tiny_exports, runtime_cache):
    directory = tiny_exports[(0.5, True)]
    broken = choose.Candidate("paddle-inference", options=(("device", "tpu"),))
    timings = choose.measure(directory, [broken, choose.Candidate("onnxruntime")],
                             choose.typical_batches(ExportInfo.read(directory), 2, 2), threads=1, rounds=1)
    assert "device 'tpu' is not 'cpu' or 'gpu'" in timings[0].error and timings[0].seconds_per_batch == float("inf")
    assert timings[1].error is None and 0 < timings[1].seconds_per_batch < 1


def test_bench_choose_command(tiny_exports, runtime_cache, capsys):
    from paddle_dynafast import cli

    assert cli.main(["bench", "--choose", str(tiny_exports[(0.5, True)]), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("*") == 3 and "throughput (batches of 32" in out and "latency (one text at a time" in out
    assert len(json.loads(runtime_cache.read_text())) == 2  # one choice per objective
    assert cli.main(["bench", "--data-dir", "x"]) == 2
    assert "bench needs --system" in capsys.readouterr().err
