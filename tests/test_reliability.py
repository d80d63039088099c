"""Issue 15's hostile-user cases at the command line: nothing of the user's destroyed, no file's code run, no
silently wrong answer, and every problem one line (exit code 2) naming it. The library-level checks behind them are
tested beside their modules (test_outputs, test_weights, test_config, test_readers, test_labels, test_loop,
test_export, test_manifest, test_predictor, test_bench)."""
import json
import shutil
from pathlib import Path

import pytest

from helpers import make_legacy, plant_payload, write_sentiment_data
from paddle_dynafast import cli

TRAIN = ["--max-seq-len", "16", "--batch-size", "16", "--epochs", "1", "--threads", "1"]


def _error(capsys, command):
    """The one line a failed command printed."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith(f"paddle-dynafast {command}: error: "), lines
    assert not any("Traceback" in line for line in lines), lines
    return lines[-1]


@pytest.fixture()
def data_dir(tmp_path):
    return write_sentiment_data(tmp_path / "data", n_train=48, n_dev=16, n_test=16)


def test_export_onto_its_own_model_is_refused_and_the_model_kept(tmp_path, tiny_dynafast_dir, capsys):
    model = Path(shutil.copytree(tiny_dynafast_dir, tmp_path / "model"))
    before = sorted(p.name for p in model.iterdir())
    for flags in ([], ["--overwrite"]):
        assert cli.main(["export", "--model", str(model), "--output", str(model), *flags]) == 2
        assert f"--output {model} would write over the input {model} of export" in _error(capsys, "export")
    assert sorted(p.name for p in model.iterdir()) == before


def test_export_onto_an_unrelated_directory_is_refused(tmp_path, tiny_dynafast_dir, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    assert cli.main(["export", "--model", str(tiny_dynafast_dir), "--output", str(tmp_path / "notes"),
                     "--overwrite"]) == 2
    assert "notes is not empty and paddle-dynafast export did not write it (it has no export.json)" \
        in _error(capsys, "export")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_restart_removes_only_the_stages_own_files(tmp_path, tiny_hf_dir, data_dir, capsys):
    args = ["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(data_dir), "--output", str(tmp_path / "out"),
            "--max-steps", "2", *TRAIN]
    assert cli.main(args) == 0
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert cli.main(args + ["--lr", "1e-3"]) == 2
    assert "another configuration (train.lr differ); pass --restart" in _error(capsys, "finetune")
    assert cli.main(args + ["--lr", "1e-3", "--restart"]) == 0
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "out" / "stage.json").read_text())["config"]["train"]["lr"] == 1e-3


def test_a_stage_never_takes_a_directory_it_did_not_write(tmp_path, tiny_hf_dir, data_dir, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    assert cli.main(["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(data_dir), "--output",
                     str(tmp_path / "mine"), "--restart", *TRAIN]) == 2
    assert "mine is not empty and paddle-dynafast finetune did not write it (it has no stage.json)" \
        in _error(capsys, "finetune")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["thesis.tex"]


def test_leftovers_and_a_partial_directory_are_cleaned_by_the_next_run(tmp_path, tiny_hf_dir, data_dir, capsys,
                                                                       monkeypatch):
    import paddle

    from paddle_dynafast.train.finetune import FinetuneStage

    out = tmp_path / "out"
    args = ["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(data_dir), "--output", str(out), *TRAIN]
    # a failed first step (the loss not finite at once) leaves nothing behind
    with monkeypatch.context() as patch:
        patch.setattr(FinetuneStage, "loss", lambda self, batch: paddle.to_tensor(float("nan"), stop_gradient=False))
        assert cli.main(args) == 2
    assert _error(capsys, "finetune").endswith("finetune: the loss is nan at step 1 (epoch 0, batch 1): training "
                                               "diverged; lower --lr or check the data")
    assert not out.exists()
    # what a kill -9 leaves: a partial stage directory (no checkpoint) and a publishing temporary
    out.mkdir()
    (out / "stage.json").write_text(json.dumps({"stage": "finetune", "complete": False,
                                                "config": {"output_dir": str(out), "data": {"data_dir": "x"}}}))
    (out / ".publish.abcd1234.tmp").mkdir()
    (out / ".publish.abcd1234.tmp" / "model.safetensors").write_bytes(b"\0" * 4096)
    (tmp_path / ".out.lock").write_text("12345\n")  # its lock file, no longer held
    assert cli.main(args) == 0
    assert not list(out.glob(".publish.*")) and json.loads((out / "stage.json").read_text())["complete"]
    assert not (tmp_path / ".out.lock").exists()


@pytest.mark.parametrize("flags, message", [
    (["--lr", "inf"], "lr must be a finite number, got inf"),
    (["--weight-decay", "nan"], "weight_decay must be a finite number, got nan"),
    (["--seed=-1"], "seed must be a whole number in [0, 4294967295], got -1"),
    (["--max-seq-len", "65"], "max_seq_len 65 is longer than the 64 positions the model of"),
])
def test_bad_settings_are_one_line_before_any_work(tmp_path, tiny_hf_dir, data_dir, capsys, flags, message):
    assert cli.main(["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(data_dir), "--output",
                     str(tmp_path / "out"), *TRAIN, *flags]) == 2
    assert message in _error(capsys, "finetune")
    assert not (tmp_path / "out").exists()


def test_a_non_finite_timeout_names_its_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_code:  # an argparse type: the usage, then the error naming the flag
        cli.main(["finetune", "--data-dir", str(tmp_path), "--output", str(tmp_path / "o"), "--dist-timeout", "inf"])
    assert exit_code.value.code == 2
    assert "argument --dist-timeout: must be a finite number of seconds > 0, got 'inf'" in capsys.readouterr().err


def test_calibrate_refuses_a_nan_budget(tmp_path, tiny_dynafast_dir, toy_data, capsys):
    assert cli.main(["calibrate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data), "--output",
                     str(tmp_path / "c"), "--max-accuracy-drop", "nan"]) == 2
    assert _error(capsys, "calibrate").endswith("max_accuracy_drop must be a finite number, got nan")
    assert not (tmp_path / "c").exists()


def test_a_likely_typo_in_the_labels_is_refused_unless_the_labels_are_given(tmp_path, tiny_hf_dir, capsys):
    data_dir = write_sentiment_data(tmp_path / "data", n_train=48, n_dev=16, n_test=16)
    lines = (data_dir / "train.txt").read_text().splitlines()
    lines[9] = "pos " + lines[9].split(" ", 1)[1]
    (data_dir / "train.txt").write_text("\n".join(lines) + "\n")
    args = ["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(data_dir), "--output", str(tmp_path / "out"),
            "--max-steps", "1", *TRAIN]
    assert cli.main(args) == 2
    assert "train.txt:10: label 'pos' is not a whole number, unlike the training labels ['0', '1']" \
        in _error(capsys, "finetune")
    assert cli.main(args + ["--labels", "0", "1", "pos"]) == 0
    assert json.loads((tmp_path / "out" / "stage.json").read_text())["labels"] == ["0", "1", "pos"]


def test_a_pickle_is_never_loaded_without_trust_pickle(tmp_path, tiny_hf_dir, tiny_dynafast_dir, data_dir, capsys):
    pretrained = Path(shutil.copytree(tiny_hf_dir, tmp_path / "pretrained"))
    (pretrained / "model.safetensors").unlink()
    plant_payload(pretrained / "model_state.pdparams", tmp_path / "ran")
    assert cli.main(["finetune", "--model", str(pretrained), "--data-dir", str(data_dir), "--output",
                     str(tmp_path / "out"), *TRAIN]) == 2
    assert "model_state.pdparams is a pickle: loading it runs any code it carries" in _error(capsys, "finetune")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "out").exists()
    old = make_legacy(Path(shutil.copytree(tiny_dynafast_dir, tmp_path / "old")))
    assert cli.main(["export", "--model", str(old), "--output", str(tmp_path / "e1")]) == 2
    assert "old/model_state.pdparams is a pickle" in _error(capsys, "export")
    assert cli.main(["export", "--model", str(old), "--output", str(tmp_path / "e2"), "--trust-pickle"]) == 0


def test_nothing_we_write_is_a_pickle(tiny_teacher_dir, tiny_supernet_dir, tiny_dynafast_dir, tiny_exports):
    directories = [tiny_teacher_dir, tiny_supernet_dir, tiny_dynafast_dir, *tiny_exports.values()]
    files = [p for d in directories for p in Path(d).rglob("*") if p.is_file()]
    assert len(files) > 40
    pickled = [p for p in files if p.read_bytes()[:1] == b"\x80" or p.suffix in (".pdparams", ".pdopt", ".pkl")]
    assert pickled == []


def test_a_read_only_output_is_one_line_at_once(tmp_path, tiny_dynafast_dir, toy_data, capsys, monkeypatch):
    from paddle_dynafast.model import dynafast

    monkeypatch.setattr(dynafast.DynaFastModel, "load", lambda *a, **k: pytest.fail("loaded the model first"))
    for command in (["export", "--model", str(tiny_dynafast_dir)],
                    ["evaluate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data)]):
        assert cli.main([*command, "--output", "/proc/paddle-dynafast/out"]) == 2
        assert "/proc/" in _error(capsys, command[0])


def test_evaluate_replaces_its_earlier_report_only_with_overwrite(tmp_path, tiny_dynafast_dir, toy_data, capsys):
    args = ["evaluate", "--model", str(tiny_dynafast_dir), "--data-dir", str(toy_data), "--output",
            str(tmp_path / "e"), "--speeds", "0", "0.5", "--threads", "1"]
    assert cli.main(args) == 0
    first = (tmp_path / "e" / "evaluation.json").read_text()
    assert cli.main(args) == 2
    assert "holds an earlier evaluate output; pass --overwrite to replace it" in _error(capsys, "evaluate")
    assert (tmp_path / "e" / "evaluation.json").read_text() == first
    assert cli.main(args + ["--overwrite"]) == 0


def test_a_damaged_manifest_is_one_line_naming_it(tmp_path, tiny_exports, capsys):
    for name, text in (("no-files", '{"versions": {}}'), ("truncated", '{"versions": {"paddle')):
        directory = Path(shutil.copytree(tiny_exports[(1.0, True)], tmp_path / name))
        (directory / "manifest.json").write_text(text)
        (tmp_path / "in.txt").write_text("good w1\n")
        assert cli.main(["predict", "--model", str(directory), "--input", str(tmp_path / "in.txt")]) == 2
        assert f"{name}/manifest.json " in _error(capsys, "predict")
