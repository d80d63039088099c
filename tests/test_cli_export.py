"""The export command: its flags become the ExportConfig (calibration data read as the model reads data), the
export is written and its directory printed."""
import json

from paddle_dynafast import cli
from paddle_dynafast.config import ExportConfig
from paddle_dynafast.model.stage_info import StageInfo


def test_flags_reach_the_export_config(tiny_dynafast_dir, toy_data):
    parse = cli.build_parser().parse_args
    args = parse(["export", "--model", str(tiny_dynafast_dir), "--output", "o"])
    assert cli.export.config_from_args(args) == ExportConfig(str(tiny_dynafast_dir), "o")
    args = parse(["export", "--model", str(tiny_dynafast_dir), "--output", "o", "--width", "0.5", "--no-exit",
                  "--no-onnx", "--int8", "--int8-activations", "static", "--calibration-data", str(toy_data),
                  "--calibration-examples", "8", "--max-seq-len", "12", "--sign-key-file", "key",
                  "--int8-float-products", "2"])
    calibration = StageInfo.read(tiny_dynafast_dir).data_config(str(toy_data))
    assert cli.export.config_from_args(args) == ExportConfig(
        str(tiny_dynafast_dir), "o", width=0.5, no_exit=True, max_seq_len=12, onnx=False, int8=True,
        int8_activations="static", calibration=calibration, calibration_examples=8, sign_key_file="key",
        int8_float_products=2)
    assert calibration.max_seq_len == 16


def test_export_command_writes_and_prints_the_export(tmp_path, tiny_dynafast_dir, capsys):
    out = tmp_path / "e"
    assert cli.main(["export", "--model", str(tiny_dynafast_dir), "--output", str(out), "--width", "0.5",
                     "--no-exit", "--no-onnx", "--threads", "1"]) == 0
    assert capsys.readouterr().out == f"-> {out}\n"
    info = json.loads((out / "export.json").read_text())
    assert (info["width"], info["exit_loop"], info["max_seq_len"]) == (0.5, False, 16)
    assert not (out / "model.onnx").exists()
