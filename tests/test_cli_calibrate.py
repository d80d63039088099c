"""The calibrate command: on FLOPs its flags become the CalibrateConfig; with --runtime the TimedCalibrateConfig;
the time budgets without a runtime to time are refused."""
import pytest

from paddle_dynafast import cli
from paddle_dynafast.config import CalibrateConfig, Precision, RuntimeName, TimedCalibrateConfig
from paddle_dynafast.errors import ConfigError


def _args(model, data, *flags):
    return cli.build_parser().parse_args(["calibrate", "--model", str(model), "--data-dir", str(data),
                                          "--output", "o", *flags])


def test_flags_reach_the_calibrate_config(tiny_dynafast_dir, toy_data):
    config = cli.calibrate.config_from_args(_args(tiny_dynafast_dir, toy_data))
    assert config == CalibrateConfig(str(tiny_dynafast_dir), "o", config.data) and config.data.max_seq_len == 16
    config = cli.calibrate.config_from_args(_args(tiny_dynafast_dir, toy_data, "--max-accuracy-drop", "1",
                                                  "--confidence", "none", "--min-flops-speedup", "2",
                                                  "--resplits", "3", "--bootstrap-samples", "500"))
    assert (config.max_accuracy_drop, config.confidence, config.min_flops_speedup, config.resplits,
            config.bootstrap.samples) == (1.0, None, 2.0, 3, 500)
    with pytest.raises(ConfigError, match="--min-throughput-speedup and --max-latency-ms need --runtime"):
        cli.calibrate.config_from_args(_args(tiny_dynafast_dir, toy_data, "--max-latency-ms", "2"))


def test_with_a_runtime_the_flags_reach_the_timed_config(tiny_dynafast_dir, toy_data):
    args = _args(tiny_dynafast_dir, toy_data, "--runtime", "onnxruntime", "--precision", "int8", "--threads", "1",
                 "--min-throughput-speedup", "4", "--reference-runtime", "paddle-inference",
                 "--int8-float-products", "0")
    config = cli.calibrate.timed_config_from_args(args)
    assert config == TimedCalibrateConfig(str(tiny_dynafast_dir), "o", config.data, runtime="onnxruntime",
                                          precision="int8", threads=1, reference_runtime="paddle-inference",
                                          min_throughput_speedup=4.0, int8_float_products=0)
    assert (config.runtime, config.precision, config.reference_runtime) == (
        RuntimeName.ONNXRUNTIME, Precision.INT8, RuntimeName.PADDLE_INFERENCE)
    with pytest.raises(SystemExit):  # dygraph times no export
        _args(tiny_dynafast_dir, toy_data, "--runtime", "dygraph")
