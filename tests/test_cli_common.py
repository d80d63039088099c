"""The argument groups several commands share: their defaults are the configs', and they build those configs."""
import argparse
import os

import pytest

from paddle_dynafast.cli import common
from paddle_dynafast.config import (BootstrapConfig, CalibrateConfig, DataConfig, EvaluateConfig, Precision,
                                    RuntimeConfig, RuntimeName)
from paddle_dynafast.model.stage_info import StageInfo


def _parser(*groups) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    for group in groups:
        group(parser)
    return parser


def test_runtime_flags_build_a_runtime_config_with_the_commands_defaults():
    parser = _parser(lambda p: common.add_runtime_args(p, RuntimeConfig(threads=2)))
    args = parser.parse_args([])
    assert (args.runtime, args.threads, args.precision) == ("auto", 2, "fp32") and type(args.runtime) is str
    assert common.runtime_config(args) == RuntimeConfig(threads=2)
    args = parser.parse_args(["--runtime", "paddle-inference", "--precision", "bf16", "--no-onednn", "--threads", "1",
                              "--sign-key-file", "k", "--trust-pickle"])
    assert common.runtime_config(args) == RuntimeConfig(RuntimeName.PADDLE_INFERENCE, 1, Precision.BF16, False, "k",
                                                        True)
    args = parser.parse_args(["--runtime", "paddle-inference", "--native-below", "8"])
    assert common.runtime_config(args).native_below == 8
    args = parser.parse_args(["--runtime", "paddle-inference", "--native-below", "auto"])
    assert common.runtime_config(args).native_below == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["--native-below", "eight"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp16"])
    assert common.names(Precision) == ["fp32", "bf16", "int8"]


def test_data_flags_of_a_training_command_and_of_a_trained_model(tiny_dynafast_dir):
    parser = _parser(common.add_data_args)
    args = parser.parse_args(["--data-dir", "d", "--output", "o", "--labels", "a", "b"])
    assert (args.max_seq_len, args.threads) == (128, len(os.sched_getaffinity(0)))  # the CPUs it may use
    args.seed = 7  # a training command's --seed
    assert common.data_config(args) == DataConfig("d", split_seed=7, labels=("a", "b"))
    parser = _parser(lambda p: common.add_measure_args(p, EvaluateConfig))
    args = parser.parse_args(["--model", str(tiny_dynafast_dir), "--data-dir", "d", "--output", "o"])
    assert (args.batch_size, args.bootstrap_samples, args.overwrite) == (64, BootstrapConfig().samples, False)
    stage = StageInfo.read(tiny_dynafast_dir)
    assert common.trained_data_config(args) == DataConfig("d", max_seq_len=stage.max_seq_len,
                                                          split_seed=stage.split_seed) and stage.max_seq_len == 16
    args = parser.parse_args(["--model", str(tiny_dynafast_dir), "--data-dir", "d", "--output", "o",
                              "--max-seq-len", "12", "--seed", "5", "--max-examples", "9"])
    assert common.trained_data_config(args) == DataConfig("d", max_seq_len=12, split_seed=5, max_examples=9)


def test_budget_flags_default_to_calibrations_and_take_none_for_the_raw_drop():
    parser = _parser(common.add_budget_args)
    args = parser.parse_args([])
    assert (args.max_accuracy_drop, args.min_flops_speedup, args.confidence) == (
        CalibrateConfig.max_accuracy_drop, CalibrateConfig.min_flops_speedup, CalibrateConfig.confidence)
    assert parser.parse_args(["--confidence", " None "]).confidence is None
    assert parser.parse_args(["--confidence", "0.8"]).confidence == 0.8
    with pytest.raises(argparse.ArgumentTypeError, match="'high' is not a probability or 'none'"):
        common.confidence("high")
