"""Choosing the runtime by measurement: the candidates per precision, the fastest chosen, the choice remembered."""
import json
import logging

import pytest

from helpers import copy_export, edit_export_file
from paddle_dynafast.errors import ConfigError
from paddle_dynafast.mkl import MKL_CPU_TYPE
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


def test_the_export_is_measured_at_its_own_speed(tiny_exports, runtime_cache, tmp_path, monkeypatch):
    from test_runtime_promise import _promise

    speeds = []

    def fake_measure(directory, found, batches, threads=2, speed=0.0, rounds=3):
        speeds.append(speed)
        return [choose.Timing(c, 1.0) for c in found]

    monkeypatch.setattr(choose, "measure", fake_measure)
    promised = copy_export(tiny_exports, tmp_path)
    edit_export_file(promised, "export.json", lambda raw: raw.update(promise=_promise(speed=0.4).to_json()))
    choose.choose(tiny_exports[(1.0, True)], threads=1, remember=False)  # no promise: no early exit
    choose.choose(promised, threads=1, remember=False)
    choose.choose(promised, threads=1, speed=0.2, remember=False)
    assert speeds == [0.0, 0.4, 0.2]


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


@pytest.fixture()
def fake_measure(monkeypatch):
    """Measurements recorded instead of made: ONNX Runtime the fastest."""
    measured = []

    def measure(directory, found, batches, threads=2, speed=0.0, rounds=3):
        measured.append(len(found))
        return [choose.Timing(c, 1.0 if c.runtime == "onnxruntime" else 2.0) for c in found]

    monkeypatch.setattr(choose, "measure", measure)
    return measured


def test_a_choice_is_remembered_per_mkl_code_path(tiny_exports, runtime_cache, fake_measure, monkeypatch):
    """On an AMD CPU Paddle's plain kernels run 3x slower without MKL_DEBUG_CPU_TYPE=5, which the command line sets
    and a Python program may not: a choice measured under one is not reused under the other."""
    directory = tiny_exports[(0.5, True)]
    monkeypatch.delenv(MKL_CPU_TYPE, raising=False)
    choose.choose(directory, threads=1)
    monkeypatch.setenv(MKL_CPU_TYPE, "5")
    choose.choose(directory, threads=1)
    assert fake_measure == [3, 3]  # measured again under MKL's other code path
    choose.choose(directory, threads=1)
    monkeypatch.delenv(MKL_CPU_TYPE)
    choose.choose(directory, threads=1)
    assert fake_measure == [3, 3]  # each remembered
    keys = list(json.loads(runtime_cache.read_text()))
    assert len(keys) == 2 and [f"|{MKL_CPU_TYPE}=5|" in key for key in keys] == [False, True]


@pytest.mark.parametrize("content, why", [
    ('{"KEY": {"candidate": "x"}}', "an entry of the wrong shape (TypeError"),
    ('{"KEY": {"candidate": {"runtime": "tensorrt", "precision": "fp32", "options": {}}}}',
     "an entry of the wrong shape (ConfigError runtime 'tensorrt' is not one of"),
    ('{"KEY": {"candidate": {"runtime": "onnxruntime", "precision": "fp32", "options": []}}}',
     "an entry of the wrong shape (AttributeError"),
    ('["not", "choices"]', "holds a JSON list, not choices"),
    ('{"truncated', "is not valid JSON"),
])
def test_a_cache_that_cannot_be_read_is_measured_again_and_said(tiny_exports, runtime_cache, fake_measure, caplog,
                                                                 content, why):
    directory = tiny_exports[(0.5, True)]
    key = choose._key(directory, 1, choose.Precision.FP32, "throughput")
    runtime_cache.parent.mkdir(parents=True)
    runtime_cache.write_text(content.replace("KEY", key))
    with caplog.at_level(logging.WARNING, logger="paddle_dynafast.runtime.choose"):
        best, timings = choose.choose(directory, threads=1)
    assert best.name == "onnxruntime fp32" and len(timings) == 3 and fake_measure == [3]
    assert str(runtime_cache) in caplog.text and why in caplog.text and "measuring again" in caplog.text
    assert json.loads(runtime_cache.read_text())[key]["candidate"]["runtime"] == "onnxruntime"  # repaired
    assert choose.choose(directory, threads=1) == (best, []) and fake_measure == [3]


def test_a_cache_that_cannot_be_written_is_a_warning_naming_it(tiny_exports, tmp_path, fake_measure, caplog,
                                                               monkeypatch):
    directory = tiny_exports[(0.5, True)]
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("PADDLE_DYNAFAST_CACHE", str(tmp_path / "file"))
    with caplog.at_level(logging.WARNING, logger="paddle_dynafast.runtime.choose"):
        assert choose.choose(directory, threads=1)[0].name == "onnxruntime fp32"
    assert (f"cannot write the runtime cache {tmp_path / 'file' / 'runtimes.json'} ([Errno 17] File exists: "
            f"'{tmp_path / 'file'}'): the choice is not remembered") in caplog.text
    monkeypatch.setenv("PADDLE_DYNAFAST_CACHE", str(tmp_path / "read-only"))

    def read_only(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(choose.atomic, "write_json", read_only)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="paddle_dynafast.runtime.choose"):
        assert choose.choose(directory, threads=1)[0].name == "onnxruntime fp32"
    assert f"cannot write the runtime cache {tmp_path / 'read-only' / 'runtimes.json'} ([Errno 13] Permission " \
           "denied" in caplog.text and fake_measure == [3, 3]


def _timed(fake):
    """A ``measure`` that reports ``fake[(candidate name, batch size)]`` seconds per batch, and records the sizes."""
    sizes = []

    def measure(directory, found, batches, threads=2, speed=0.0, rounds=3):
        size = len(batches[0][0])
        sizes.append(size)
        return [choose.Timing(c, fake.get((c.name, size), fake.get(c.name, 9.0))) for c in found]
    return measure, sizes


@pytest.mark.parametrize("onednn_from, expected", [(1, 0), (4, 4), (None, 17)])
def test_crossover_is_the_first_batch_size_at_which_onednn_pays(tiny_exports, monkeypatch, onednn_from, expected):
    plain, onednn = "paddle-inference fp32 onednn=False", "paddle-inference fp32 onednn=True"
    fake = {}
    for size in choose.CROSSOVER_SIZES:
        fake[(plain, size)], fake[(onednn, size)] = 1.0, (0.5 if onednn_from and size >= onednn_from else 2.0)
    measure, sizes = _timed(fake)
    monkeypatch.setattr(choose, "measure", measure)
    below, measured = choose.crossover(tiny_exports[(0.5, True)], threads=1)
    assert below == expected
    assert sizes == [s for s in choose.CROSSOVER_SIZES if not onednn_from or s <= onednn_from]  # stops when it pays
    assert measured[sizes[-1]] == {"native": 1000 * fake[(plain, sizes[-1])], "onednn": 1000 * fake[(onednn, sizes[-1])]}


def test_paddle_inference_onednn_chosen_for_throughput_gets_its_crossover_and_keeps_it(tiny_exports, runtime_cache,
                                                                                      monkeypatch):
    from paddle_dynafast.runtime.auto import open_runtime

    directory = tiny_exports[(0.5, True)]
    plain, onednn = "paddle-inference fp32 onednn=False", "paddle-inference fp32 onednn=True"
    fake = {plain: 3.0, onednn: 1.0, "onnxruntime fp32": 2.0, (plain, 1): 1.0, (onednn, 1): 2.0,
            (plain, 2): 1.0, (onednn, 2): 2.0, (plain, 4): 2.0, (onednn, 4): 1.0}
    measure, sizes = _timed(fake)
    monkeypatch.setattr(choose, "measure", measure)
    best, _ = choose.choose(directory, threads=1)
    assert best.name == "paddle-inference fp32 native_below=4 onednn=True" and sizes == [32, 1, 2, 4]
    assert json.loads(runtime_cache.read_text()).popitem()[1]["candidate"]["options"] == {"native_below": 4,
                                                                                           "onednn": True}
    assert choose.choose(directory, threads=1) == (best, []) and sizes == [32, 1, 2, 4]  # remembered, not measured
    runtime = open_runtime(directory, "auto", threads=1)
    assert runtime.native_below == 4 and runtime.native is not None
    assert open_runtime(directory, "paddle-inference", threads=1, native_below="auto").native_below == 4
    assert sizes == [32, 1, 2, 4]  # the crossover the choice measured, not measured again
    latency, _ = choose.choose(directory, threads=1, objective="latency")  # one text at a time: the plain kernels
    assert latency.name == plain and sizes == [32, 1, 2, 4, 1]
    cached = runtime_cache.read_text()
    assert choose.choose(directory, threads=1, remember=False)[0] == best and runtime_cache.read_text() == cached
    assert sizes == [32, 1, 2, 4, 1] + [32, 1, 2, 4]  # measured again, choice and crossover, and not remembered
    fake[(onednn, 2)] = 0.5
    refreshed, _ = choose.choose(directory, threads=1, refresh=True)
    assert refreshed.name == "paddle-inference fp32 native_below=2 onednn=True"
    assert sizes[-3:] == [32, 1, 2] and open_runtime(directory, "auto", threads=1).native_below == 2
    assert open_runtime(directory, "paddle-inference", threads=1, native_below="auto").native_below == 2


def test_native_below_auto_is_measured_once_per_export_and_remembered(tiny_exports, runtime_cache, monkeypatch):
    from paddle_dynafast.runtime.auto import open_runtime

    directory, asked = tiny_exports[(0.5, True)], []

    def crossover(directory, threads=2, speed=0.0):
        asked.append((str(directory), threads, speed))
        return 3, {1: {"native": 1.0, "onednn": 2.0}}

    monkeypatch.setattr(choose, "crossover", crossover)
    runtime = open_runtime(directory, "paddle-inference", threads=1, native_below="auto")
    assert runtime.native_below == 3 and runtime.native is not None and asked == [(str(directory), 1, 0.0)]
    assert open_runtime(directory, "paddle-inference", threads=1, native_below="auto").native_below == 3
    assert len(asked) == 1  # remembered
    (entry,) = json.loads(runtime_cache.read_text()).values()
    assert entry["native_below"] == 3 and entry["ms_per_batch"] == {"1": {"native": 1.0, "onednn": 2.0}}
    assert choose.remembered_crossover(directory, threads=1, speed=0.3) == 3 and len(asked) == 2  # another speed
    with pytest.raises(ConfigError, match="native_below needs oneDNN on the CPU in fp32"):
        open_runtime(directory, "paddle-inference", threads=1, onednn=False, native_below="auto")
    with pytest.raises(ConfigError, match="native_below needs oneDNN on the CPU in fp32"):
        open_runtime(directory, "paddle-inference", threads=1, device="gpu", native_below="auto")
    assert len(asked) == 2  # nothing measured for a runtime that cannot use it
