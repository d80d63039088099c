"""The evaluate command: its flags become the EvaluateConfig, on the model's own max_seq_len."""
from paddle_dynafast import cli
from paddle_dynafast.config import BootstrapConfig, EvaluateConfig


def test_flags_reach_the_evaluate_config(tiny_dynafast_dir, toy_data):
    common = ["--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data), "--output", "o"]
    config = cli.evaluate.config_from_args(cli.build_parser().parse_args(["evaluate", *common]))
    assert config == EvaluateConfig(str(tiny_dynafast_dir), "o", config.data)
    assert (config.data.data_dir, config.data.max_seq_len) == (str(toy_data), 16)  # the model's
    args = cli.build_parser().parse_args(["evaluate", *common, "--split", "dev", "--widths", "0.5", "1.0",
                                          "--speeds", "0.3", "0", "--patience", "--batch-size", "8",
                                          "--bootstrap-samples", "200"])
    config = cli.evaluate.config_from_args(args)
    assert (config.split, config.widths, config.speeds, config.patience, config.batch_size) == (
        "dev", (1.0, 0.5), (0.0, 0.3), (), 8)
    assert config.bootstrap == BootstrapConfig(samples=200)
