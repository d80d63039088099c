"""The configs of export, predict, bench and serve reject bad values naming them; runtime names and precisions are
typed once and still equal the strings callers pass."""
import dataclasses
import json
import os
from pathlib import Path

import pytest

from paddle_dynafast.config import (EXPORT_RUNTIMES, BenchConfig, BenchSystem, DataConfig, ExportConfig, Precision,
                                    PredictConfig, RuntimeConfig, RuntimeName, ServeConfig, TimedCalibrateConfig,
                                    as_precision, as_runtime, default, to_dict)
from paddle_dynafast.errors import ConfigError


def test_names_are_their_strings_in_comparisons_formatting_and_json():
    assert RuntimeName.ONNXRUNTIME == "onnxruntime" and "int8" == Precision.INT8
    assert {RuntimeName.DYGRAPH: 1}["dygraph"] == 1 and {"bf16": 2}[Precision.BF16] == 2
    assert f"{RuntimeName.PADDLE_INFERENCE} {Precision.BF16}" == "paddle-inference bf16"
    assert str(Precision.FP32) == "fp32" and "%s" % RuntimeName.AUTO == "auto"
    assert json.dumps({"runtime": RuntimeName.AUTO, Precision.INT8: [Precision.FP32]}) == \
        '{"runtime": "auto", "int8": ["fp32"]}'
    assert [r.value for r in RuntimeName] == ["dygraph", "onnxruntime", "paddle-inference", "auto"]
    assert [p.value for p in Precision] == ["fp32", "bf16", "int8"]


def test_a_string_becomes_its_member_and_anything_else_is_named():
    assert as_runtime("onnxruntime") is RuntimeName.ONNXRUNTIME and as_precision(Precision.INT8) is Precision.INT8
    with pytest.raises(ConfigError, match=r"^runtime 'tensorrt' is not one of \['dygraph', 'onnxruntime', "
                                          r"'paddle-inference', 'auto'\]$"):
        as_runtime("tensorrt")
    with pytest.raises(ConfigError, match=r"^runtime 'auto' is not one of \['paddle-inference', 'onnxruntime'\]$"):
        as_runtime("auto", EXPORT_RUNTIMES)
    with pytest.raises(ConfigError, match=r"^precision 'fp16' is not one of \['fp32', 'bf16', 'int8'\]$"):
        as_precision("fp16")
    with pytest.raises(ConfigError, match=r"precision None is not one of"):
        as_precision(None)


@pytest.mark.parametrize("build, message", [
    (lambda: ExportConfig("m", "o", width=0), "width 0.0 is not in (0, 1]"),
    (lambda: ExportConfig("m", "o", width=1.5), "width 1.5 is not in (0, 1]"),
    (lambda: ExportConfig("m", "o", width=float("nan")), "width must be a finite number, got nan"),
    (lambda: ExportConfig("m", "o", max_seq_len=2), "max_seq_len 2 is too short"),
    (lambda: ExportConfig("m", "o", int8=True, int8_activations="fixed"),
     "int8_activations 'fixed' is not one of token, dynamic, static"),
    (lambda: ExportConfig("m", "o", calibration_examples=0), "calibration_examples must be a whole number >= 1, got 0"),
    (lambda: PredictConfig("m", speed=1.5), "speed 1.5 is not in [0, 1]"),
    (lambda: PredictConfig("m", speed=float("nan")), "speed nan is not in [0, 1]"),
    (lambda: PredictConfig("m", batch_size=0), "batch_size must be >= 1, got 0"),
    (lambda: RuntimeConfig(name="tensorrt"), "runtime 'tensorrt' is not one of"),
    (lambda: RuntimeConfig(precision="int4"), "precision 'int4' is not one of ['fp32', 'bf16', 'int8']"),
    (lambda: RuntimeConfig(threads=0), "threads must be a whole number >= 1, got 0"),
    (lambda: RuntimeConfig(name="paddle-inference", native_below=-2), "native_below -2 is not a whole number >= 0 or"),
    (lambda: RuntimeConfig(name="paddle-inference", native_below="4"), "native_below '4' is not a whole number"),
    (lambda: RuntimeConfig(name="paddle-inference", onednn=False, native_below="auto"), "native_below needs oneDNN"),
    (lambda: RuntimeConfig(native_below=8), "native_below is an option of Paddle Inference: name that runtime"),
    (lambda: BenchSystem("a", "d", speed=2.0), "speed of system 'a' 2.0 is not in [0, 1]"),
    (lambda: BenchSystem("", "d"), "the system of d has no name"),
    (lambda: BenchConfig((), "d", "o"), "no systems to measure"),
    (lambda: BenchConfig((BenchSystem("a", "x"), BenchSystem("a", "y")), "d", "o"),
     "system names ['a'] repeat: every system needs a name of its own"),
    (lambda: BenchConfig((BenchSystem("a", "x"),), "d", "o", samples=0), "samples must be a whole number >= 1, got 0"),
    (lambda: BenchConfig((BenchSystem("a", "x"),), "d", "o", rounds=True), "rounds must be a whole number >= 1"),
    (lambda: BenchConfig((BenchSystem("a", "x"),), "d", "o", split="val"), "split 'val' is not train, dev or test"),
    (lambda: BenchConfig((BenchSystem("a", "x"),), "d", "o", max_examples=0),
     "max_examples must be a whole number >= 1, got 0"),
    (lambda: ServeConfig(max_texts=0), "max_texts must be a whole number >= 1, got 0"),
    (lambda: TimedCalibrateConfig("m", "o", DataConfig("d"), reference_runtime="dygraph"),
     "runtime 'dygraph' is not one of ['auto', 'paddle-inference', 'onnxruntime']"),
    (lambda: TimedCalibrateConfig("m", "o", DataConfig("d"), precision="fp16"), "precision 'fp16' is not one of"),
])
def test_bad_values_are_named(build, message):
    with pytest.raises(ConfigError) as error:
        build()
    assert message in str(error.value)


def test_paths_are_kept_as_strings_and_names_as_members(tmp_path):
    config = ExportConfig(tmp_path / "m", Path("o"), width=1, sign_key_file=tmp_path / "key")
    assert (config.model_dir, config.output_dir, config.sign_key_file) == (str(tmp_path / "m"), "o",
                                                                           str(tmp_path / "key"))
    assert config.width == 1.0 and isinstance(config.width, float)
    runtime = RuntimeConfig(name="onnxruntime", precision="int8")
    assert runtime.name is RuntimeName.ONNXRUNTIME and runtime.precision is Precision.INT8
    timed = TimedCalibrateConfig("m", "o", DataConfig("d"), runtime="paddle-inference", precision="bf16")
    assert timed.runtime is RuntimeName.PADDLE_INFERENCE and timed.precision is Precision.BF16
    assert to_dict(timed)["runtime"] == "paddle-inference" and to_dict(timed)["reference_runtime"] == "auto"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.width = 0.5


def test_the_defaults_each_command_runs_with():
    assert RuntimeConfig().threads == len(os.sched_getaffinity(0)) and RuntimeConfig().name == "auto"
    assert default(PredictConfig, "runtime") == RuntimeConfig()
    assert default(BenchConfig, "runtime") == RuntimeConfig(threads=2)  # a shared machine's numbers vary less
    assert (default(ExportConfig, "width"), default(ExportConfig, "onnx"), default(ExportConfig, "int8")) == \
        (1.0, True, False)
    bench = BenchConfig([BenchSystem("full", Path("e"))], "d", "o")
    assert bench.systems == (BenchSystem("full", "e", 0.0),) and (bench.samples, bench.rounds) == (200, 5)


def test_threads_are_bounded_by_the_cpus_this_process_may_use(monkeypatch):
    """Not the machine's count: a container's or taskset's share (os.sched_getaffinity). Here: one CPU of eight."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert RuntimeConfig().threads == 1 and default(BenchConfig, "runtime").threads == 1
    for threads in (2, 100_000, 100_000_000_000):
        with pytest.raises(ConfigError, match=rf"^threads {threads} is more than the 1 CPUs this process may use "
                                              r"\(os.sched_getaffinity\); give at most 1$"):
            RuntimeConfig(threads=threads)
    with pytest.raises(ConfigError, match=r"^threads must be a whole number >= 1, got 0$"):
        RuntimeConfig(threads=0)


def test_predict_replaces_an_existing_output_only_when_asked():
    assert PredictConfig("m").overwrite is False and PredictConfig("m", output_file="o", overwrite=True).overwrite
