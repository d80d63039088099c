"""Issue 15's hostile-user cases at the command line: nothing of the user's destroyed, no file's code run, no
silently wrong answer, and every problem one line (exit code 2) naming it. The library-level checks behind them are
tested beside their modules (test_outputs, test_weights, test_config, test_readers, test_labels, test_loop,
test_export, test_manifest, test_predictor, test_bench)."""
import json
import shutil
from pathlib import Path

import pytest

from helpers import copy_export, edit_export_file, make_legacy, plant_payload, rehash, write_sentiment_data
from paddle_dynafast import atomic, cli

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
    published = atomic.make_temporary(out, "publish")  # marked, as publish_files makes it
    (published / "model.safetensors").write_bytes(b"\0" * 4096)
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


# Issue 25: exports that cannot reach outside themselves, bounded resources, every refusal one line.

KEY = b"0123456789abcdef0123456789abcdef"


def _texts(tmp_path, text="good w1\nbad w2\n", name="in.txt"):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def _predict(model, *flags):
    return ["predict", "--model", str(model), "--threads", "1", *flags]


def test_a_link_inside_an_export_is_refused_by_name(tmp_path, tiny_exports, capsys):
    """``ln -s /etc/passwd EXPORT/passwd.txt`` listed in the manifest with its sha256, or ``vocab.txt`` made a link:
    refused by name, whatever the manifest says."""
    for name in ("passwd.txt", "vocab.txt"):
        directory = copy_export(tiny_exports, tmp_path, name=f"link-{name}")
        (directory / name).unlink(missing_ok=True)
        (directory / name).symlink_to("/etc/passwd")
        rehash(directory)
        assert cli.main(_predict(directory, "--input", _texts(tmp_path))) == 2
        assert _error(capsys, "predict").endswith(f"{directory / name} is a symbolic link (to /etc/passwd): every "
                                                  f"file of {directory} must be a regular file inside it; copy the "
                                                  "file in place of the link")
        assert capsys.readouterr().out == ""


def test_a_link_inside_a_stage_directory_is_refused_by_name(tmp_path, tiny_dynafast_dir, tiny_hf_dir, toy_data,
                                                            capsys):
    stage = Path(shutil.copytree(tiny_dynafast_dir, tmp_path / "stage"))
    for name in ("vocab.txt", "model.safetensors", "branches.json"):
        (tmp_path / name).write_bytes((stage / name).read_bytes())  # the same bytes, outside
        (stage / name).unlink()
        (stage / name).symlink_to(tmp_path / name)
        assert cli.main(["export", "--model", str(stage), "--output", str(tmp_path / "e"), "--threads", "1"]) == 2
        assert f"{stage / name} is a symbolic link (to {tmp_path / name})" in _error(capsys, "export")
        (stage / name).unlink()
        (stage / name).write_bytes((tmp_path / name).read_bytes())
    pretrained = Path(shutil.copytree(tiny_hf_dir, tmp_path / "pretrained"))
    (pretrained / "config.json").rename(tmp_path / "config.json")
    (pretrained / "config.json").symlink_to(tmp_path / "config.json")
    assert cli.main(["finetune", "--model", str(pretrained), "--data-dir", str(toy_data), "--output",
                     str(tmp_path / "out"), *TRAIN]) == 2
    assert f"{pretrained / 'config.json'} is a symbolic link" in _error(capsys, "finetune")
    assert not (tmp_path / "e").exists() and not (tmp_path / "out").exists()


def test_predict_never_writes_into_the_export_it_reads(tmp_path, tiny_exports, capsys):
    directory = copy_export(tiny_exports, tmp_path)
    vocab = (directory / "vocab.txt").read_text()
    for target, flags in ((directory / "vocab.txt", []), (directory / "vocab.txt", ["--overwrite"]),
                          (directory / "new.jsonl", [])):
        assert cli.main(_predict(directory, "--input", _texts(tmp_path), "--output", str(target), *flags)) == 2
        assert _error(capsys, "predict").endswith(f"--output {target} is inside {directory}, which predict reads; an "
                                                  "input is never written into: choose another --output")
    assert (directory / "vocab.txt").read_text() == vocab and not (directory / "new.jsonl").exists()
    assert cli.main(_predict(directory, "--input", _texts(tmp_path))) == 0  # still intact: its manifest holds


def test_predict_output_refuses_an_existing_file_and_is_written_whole_or_not_at_all(tmp_path, tiny_exports, capsys):
    directory, out = tiny_exports[(1.0, True)], tmp_path / "existing.txt"
    out.write_text("mine\n")
    assert cli.main(_predict(directory, "--input", _texts(tmp_path), "--output", str(out))) == 2
    assert _error(capsys, "predict").endswith(f"--output {out} exists; pass --overwrite to replace it, or choose "
                                              "another --output (nothing was changed)")
    bad = _texts(tmp_path, "good w1\n" * 5000 + "\n", name="bad.txt")  # an empty line after 5000 texts
    assert cli.main(_predict(directory, "--input", bad, "--output", str(out), "--overwrite", "--batch-size", "8")) == 2
    assert _error(capsys, "predict").endswith("bad.txt:5001: empty line; give one text per line")
    assert out.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.txt", "existing.txt", "in.txt"]  # no temporary, no lock left
    assert cli.main(_predict(directory, "--input", _texts(tmp_path), "--output", str(out), "--overwrite")) == 0
    assert [json.loads(line)["exit_layer"] for line in out.read_text().splitlines()] == [2, 2]


@pytest.mark.parametrize("name, content", [("stdin", None), ("empty.txt", ""), ("empty.tsv", ""),
                                           ("header.tsv", "label\ttext_a\n"), ("empty.jsonl", "")])
def test_an_empty_input_gives_zero_lines_out(tmp_path, tiny_exports, capsys, monkeypatch, name, content):
    import io

    if content is None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
        assert cli.main(_predict(tiny_exports[(1.0, True)])) == 0
        where = "standard input"
    else:
        where = _texts(tmp_path, content, name=name)
        assert cli.main(_predict(tiny_exports[(1.0, True)], "--input", where, "--output",
                                 str(tmp_path / "out.jsonl"))) == 0
        assert (tmp_path / "out.jsonl").read_text() == ""
    captured = capsys.readouterr()
    assert captured.out == "" and f"no texts in {where}: nothing to predict, 0 lines written" in captured.err


def _signed_export(tmp_path, tiny_dynafast_dir):
    """A copy of the tiny distilled model, and an export of it signed with KEY (and the key's file)."""
    from paddle_dynafast.config import ExportConfig
    from paddle_dynafast.runtime.export import export_model

    source = Path(shutil.copytree(tiny_dynafast_dir, tmp_path / "source"))
    (tmp_path / "key").write_bytes(KEY)
    return source, export_model(ExportConfig(source, tmp_path / "signed", width=1.0, onnx=False), sign_key=KEY)


def test_the_signature_covers_what_the_dygraph_runtime_runs(tmp_path, tiny_dynafast_dir, capsys):
    """An attacker edits the source's weights (every text their label): dygraph under the key is refused, before
    anything is loaded; so is a stage directory given with a key (it has no signature)."""
    from safetensors.numpy import load_file, save_file

    source, signed = _signed_export(tmp_path, tiny_dynafast_dir)
    flags = ["--input", _texts(tmp_path), "--runtime", "dygraph", "--sign-key-file", str(tmp_path / "key")]
    assert cli.main(_predict(signed, *flags)) == 0
    weights = load_file(str(source / "model.safetensors"))
    weights["classifier.bias"] = weights["classifier.bias"] + [100.0, -100.0]
    save_file(weights, str(source / "model.safetensors"), metadata={"format": "np"})
    capsys.readouterr()
    assert cli.main(_predict(signed, *flags)) == 2
    assert _error(capsys, "predict").endswith(f"{source / 'model.safetensors'} changed since {signed} was exported "
                                              "from it (its sha256 differs from manifest.json); export it again")
    assert cli.main(_predict(source, *flags)) == 2
    assert _error(capsys, "predict").endswith(f"{source} is not an export: a sign key checks an export's signature, "
                                              "and a stage directory carries none; give an export directory, or no "
                                              "sign key")


def test_runtime_auto_under_a_key_checks_the_signature_before_measuring(tmp_path, tiny_exports, runtime_cache,
                                                                        capsys, monkeypatch):
    from paddle_dynafast.runtime import choose
    from paddle_dynafast.runtime.manifest import write_manifest

    directory = copy_export(tiny_exports, tmp_path)
    (directory / "manifest.json").unlink()
    write_manifest(directory, KEY)
    (tmp_path / "key").write_bytes(KEY)
    edit_export_file(directory, "export.json", lambda r: r.update(labels=["1", "0"]))
    monkeypatch.setattr(choose, "measure", lambda *a, **k: pytest.fail("a tampered export was run to time it"))
    assert cli.main(_predict(directory, "--input", _texts(tmp_path), "--runtime", "auto", "--sign-key-file",
                             str(tmp_path / "key"))) == 2
    assert "the signature does not match: the export was edited after it was signed" in _error(capsys, "predict")
    assert not runtime_cache.exists()


def test_weights_that_are_not_finite_are_refused_at_load_and_at_export(tmp_path, tiny_dynafast_dir, capsys):
    from safetensors.numpy import load_file, save_file

    stage = Path(shutil.copytree(tiny_dynafast_dir, tmp_path / "stage"))
    weights = load_file(str(stage / "model.safetensors"))
    weights["classifier.bias"][0] = float("nan")
    save_file(weights, str(stage / "model.safetensors"), metadata={"format": "np"})
    message = (f"{stage / 'model.safetensors'}: tensor classifier.bias holds 1 of 2 values that are not finite (NaN "
               "or infinity): the weights are damaged")
    assert cli.main(["export", "--model", str(stage), "--output", str(tmp_path / "e"), "--threads", "1"]) == 2
    assert _error(capsys, "export").endswith(message) and not (tmp_path / "e").exists()
    assert cli.main(_predict(stage, "--input", _texts(tmp_path), "--runtime", "dygraph")) == 2
    assert _error(capsys, "predict").endswith(message)
    assert capsys.readouterr().out == ""


def test_threads_are_bounded_by_the_cpus_this_process_may_use(tmp_path, tiny_exports, capsys):
    import os

    cpus = len(os.sched_getaffinity(0))
    for command in (_predict(tiny_exports[(1.0, True)])[:-2], ["export", "--model", "m", "--output", "o"]):
        assert cli.main([*command, "--threads", "100000"]) == 2
        assert _error(capsys, command[0]).endswith(f"--threads 100000 is more than the {cpus} CPUs this process may "
                                                   f"use (os.sched_getaffinity); give at most {cpus}")


def test_clean_up_removes_only_what_paddle_dynafast_made(tmp_path, tiny_dynafast_dir, tiny_hf_dir, toy_data):
    """``d/.out.old-1/KEEP`` beside an export's output and ``o/.config.old-2`` in a stage's look like leftovers by
    name; they are the user's and stay."""
    (tmp_path / "d" / ".out.old-1").mkdir(parents=True)
    (tmp_path / "d" / ".out.old-1" / "KEEP").write_text("x")
    assert cli.main(["export", "--model", str(tiny_dynafast_dir), "--output", str(tmp_path / "d" / "out"),
                     "--threads", "1"]) == 0
    assert (tmp_path / "d" / ".out.old-1" / "KEEP").read_text() == "x"
    args = ["finetune", "--model", str(tiny_hf_dir), "--data-dir", str(toy_data), "--output", str(tmp_path / "o"),
            "--max-steps", "1", *TRAIN]
    assert cli.main(args) == 0
    (tmp_path / "o" / ".config.old-2").write_text("mine")
    assert cli.main(args) == 0  # done already: the same output claimed again
    assert (tmp_path / "o" / ".config.old-2").read_text() == "mine"


def test_a_lock_file_that_is_a_link_is_never_written_through(tmp_path, tiny_dynafast_dir, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ".out.lock").symlink_to(victim)
    assert cli.main(["export", "--model", str(tiny_dynafast_dir), "--output", str(tmp_path / "d" / "out"),
                     "--threads", "1"]) == 2
    assert "is a symbolic link (to" in _error(capsys, "export") and victim.read_text() == "precious"


def test_a_runtime_cache_that_cannot_be_used_costs_a_measurement_not_the_predictions(tmp_path, tiny_exports, capsys,
                                                                                     monkeypatch):
    (tmp_path / "cache").write_text("a file where the cache directory belongs")
    monkeypatch.setenv("PADDLE_DYNAFAST_CACHE", str(tmp_path / "cache"))
    assert cli.main(_predict(tiny_exports[(1.0, True)], "--input", _texts(tmp_path), "--runtime", "auto")) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    cache = tmp_path / "cache"
    assert (f"WARNING paddle_dynafast.runtime.choose: cannot write the runtime cache {cache / 'runtimes.json'} "
            f"([Errno 17] File exists: '{cache}'): the choice is not remembered; set PADDLE_DYNAFAST_CACHE to a "
            "directory you can write") in captured.err


class Damage:
    """Builds the inputs of a damaged-input case: copies of the session's models with one file changed."""

    def __init__(self, request, tmp_path):
        self.request, self.tmp_path = request, tmp_path

    def texts(self, content="good w1\n", name="in.txt") -> str:
        path = self.tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def export(self, name, change) -> str:
        """A copy of the width-0.5 export (fp32 and int8 ONNX) with ``name`` changed and the manifest updated to
        match, as someone editing it on purpose would."""
        directory = copy_export(self.request.getfixturevalue("tiny_exports"), self.tmp_path, key=(0.5, True))
        path = directory / name
        if name != "manifest.json":
            path.write_bytes(change(path.read_bytes()))
            rehash(directory)
        else:
            path.write_bytes(change(path.read_bytes()))
        return str(directory)

    def model(self) -> str:
        """An intact export (for cases whose damage is elsewhere)."""
        return str(self.request.getfixturevalue("tiny_exports")[(1.0, True)])

    def pretrained(self, name, change) -> str:
        directory = Path(shutil.copytree(self.request.getfixturevalue("tiny_hf_dir"), self.tmp_path / "pretrained"))
        path = directory / name
        path.write_bytes(change(path.read_bytes()))
        return str(directory)

    def stage(self, name, change) -> str:
        directory = Path(shutil.copytree(self.request.getfixturevalue("tiny_dynafast_dir"), self.tmp_path / "stage"))
        path = directory / name
        path.write_bytes(change(path.read_bytes()))
        return str(directory)

    def data(self) -> str:
        return str(self.request.getfixturevalue("toy_data"))

    def distilled(self) -> str:
        return str(self.request.getfixturevalue("tiny_dynafast_dir"))

    def hf(self) -> str:
        return str(self.request.getfixturevalue("tiny_hf_dir"))


def _config(**changes):
    """A change of config.json: its settings updated with ``changes``."""
    return lambda raw: json.dumps({**json.loads(raw), **changes}).encode()


def _without(token):
    return lambda raw: b"\n".join(line for line in raw.split(b"\n") if line != token.encode())


EMPTY, BINARY = (lambda raw: b""), (lambda raw: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")


NAN32 = b"\x00\x00\xc0\x7f"  # a float32 NaN, little-endian


def _nan_weight_onnx(raw: bytes) -> bytes:
    """``model.onnx`` with its largest float weight (the word embeddings, a ``Constant`` node) all NaN."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(raw)
    constants = [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    weights = max((t for t in [*model.graph.initializer, *constants] if t.data_type == onnx.TensorProto.FLOAT),
                  key=lambda t: int(np.prod(t.dims)))
    weights.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(weights).shape, np.nan, "float32"),
                                             weights.name))
    return model.SerializeToString()


def _finetune(d: Damage, model):
    return ["finetune", "--model", model, "--data-dir", d.data(), "--output", str(d.tmp_path / "out"), *TRAIN]


DAMAGED = {
    # the vocabulary, in an export (predict) and in a pretrained directory (finetune)
    "predict: empty vocab.txt": (lambda d: _predict(d.export("vocab.txt", EMPTY), "--input", d.texts()),
                                 "vocab.txt is empty: a vocabulary holds one token a line"),
    "predict: vocab.txt without [UNK]": (
        lambda d: _predict(d.export("vocab.txt", _without("[UNK]")), "--input", d.texts()),
        "vocab.txt has no [UNK]: not a BERT vocabulary (one token a line, the special tokens [PAD], [UNK], [CLS], "
        "[SEP] among them)"),
    "predict: binary vocab.txt": (lambda d: _predict(d.export("vocab.txt", BINARY), "--input", d.texts()),
                                  "vocab.txt is not UTF-8 text (byte 0: b'\\x89'); is it damaged, or a binary file?"),
    "finetune: empty vocab.txt": (lambda d: _finetune(d, d.pretrained("vocab.txt", EMPTY)),
                                  "pretrained/vocab.txt is empty"),
    "finetune: vocab.txt without [UNK]": (lambda d: _finetune(d, d.pretrained("vocab.txt", _without("[UNK]"))),
                                          "pretrained/vocab.txt has no [UNK]: not a BERT vocabulary"),
    "finetune: binary vocab.txt": (lambda d: _finetune(d, d.pretrained("vocab.txt", BINARY)),
                                   "pretrained/vocab.txt is not UTF-8 text"),
    # the program files of an export, on the runtime that reads each
    "predict: truncated model.pdiparams": (
        lambda d: _predict(d.export("model.pdiparams", lambda raw: raw[:len(raw) // 2]), "--input", d.texts(),
                           "--runtime", "paddle-inference"),
        "model.pdiparams cannot be loaded by Paddle Inference (damaged or truncated?): (Unavailable) Cannot read "
        "tensor desc size"),
    "predict: invalid model.json": (
        lambda d: _predict(d.export("model.json", lambda raw: raw[:100]), "--input", d.texts(), "--runtime",
                           "paddle-inference"),
        "model.json cannot be loaded by Paddle Inference (damaged or truncated?)"),
    "predict: model.json of another shape": (
        lambda d: _predict(d.export("model.json", lambda raw: b'{"a": 1}'), "--input", d.texts(), "--runtime",
                           "paddle-inference"),
        "model.json cannot be loaded by Paddle Inference (damaged or truncated?): (InvalidArgument) Invalid model "
        "file"),
    "predict: damaged model.onnx": (
        lambda d: _predict(d.export("model.onnx", lambda raw: raw[:1000]), "--input", d.texts(), "--runtime",
                           "onnxruntime"),
        "model.onnx cannot be loaded by ONNX Runtime (damaged or truncated?): [ONNXRuntimeError] : 7 : "
        "INVALID_PROTOBUF"),
    "predict: damaged model.int8.onnx": (
        lambda d: _predict(d.export("model.int8.onnx", lambda raw: raw[:1000]), "--input", d.texts(), "--runtime",
                           "onnxruntime", "--precision", "int8"),
        "model.int8.onnx cannot be loaded by ONNX Runtime (damaged or truncated?)"),
    "predict: a NaN weight in model.onnx": (
        lambda d: _predict(d.export("model.onnx", _nan_weight_onnx), "--input", d.texts(), "--runtime",
                           "onnxruntime"),
        "the program gives probabilities that are not finite (NaN or infinity) on a text of max_seq_len tokens: its "
        "weights are damaged"),
    "predict: a NaN weight at the end of model.pdiparams": (
        lambda d: _predict(d.export("model.pdiparams", lambda raw: raw[:-8] + NAN32 * 2), "--input", d.texts(),
                           "--runtime", "paddle-inference"),
        "the program gives probabilities that are not finite (NaN or infinity) on a text of max_seq_len tokens: its "
        "weights are damaged"),
    "predict: manifest.json nested 100 000 deep": (
        lambda d: _predict(d.export("manifest.json", lambda raw: b"[" * 100_000), "--input", d.texts()),
        "manifest.json is nested too deeply to be a file paddle-dynafast wrote"),
    # config.json: wrong types, absurd sizes, values past int32
    "finetune: config.json num_attention_heads 'abc'": (
        lambda d: _finetune(d, d.pretrained("config.json", _config(num_attention_heads="abc"))),
        "config.json: num_attention_heads must be a whole number in [1, 2147483647], got 'abc'"),
    "finetune: config.json a list": (lambda d: _finetune(d, d.pretrained("config.json", lambda raw: b"[1, 2]")),
                                     "config.json holds a JSON list, not an object of settings"),
    "finetune: config.json max_position_embeddings 10^12": (
        lambda d: _finetune(d, d.pretrained("config.json", _config(max_position_embeddings=10 ** 12))),
        "config.json: max_position_embeddings must be a whole number in [1, 2147483647], got 1000000000000"),
    "finetune: config.json vocab_size past int32": (
        lambda d: _finetune(d, d.pretrained("config.json", _config(vocab_size=2 ** 31))),
        "config.json: vocab_size must be a whole number in [1, 2147483647], got 2147483648"),
    "finetune: config.json max_position_embeddings 10^8": (
        lambda d: _finetune(d, d.pretrained("config.json", _config(max_position_embeddings=10 ** 8))),
        "config.json describes a model of 3,200,"),
    "finetune: config.json hidden_act a list": (
        lambda d: _finetune(d, d.pretrained("config.json", _config(hidden_act=["gelu"]))),
        "config.json: hidden_act must be a JSON string, got ['gelu']"),
    "export: config.json layer_norm_eps NaN": (
        lambda d: ["export", "--model", d.stage("config.json", _config(layer_norm_eps=float("nan"))), "--output",
                   str(d.tmp_path / "e"), "--threads", "1"],
        "config.json: layer_norm_eps must be a finite number, got nan"),
    "export: stage.json a list": (
        lambda d: ["export", "--model", d.stage("stage.json", lambda raw: b"[]"), "--output", str(d.tmp_path / "e"),
                   "--threads", "1"],
        "stage.json is malformed: AttributeError"),
    # bad settings and bad data
    "predict: --threads 100000000000": (lambda d: [*_predict(d.model())[:-2], "--threads", "100000000000"],
                                        "--threads 100000000000 is more than the"),
    "predict: a .tsv field longer than 131072 characters": (
        lambda d: _predict(d.model(), "--input", d.texts("label\ttext_a\n1\t" + "w1 " * 50_000 + "\n", "big.tsv")),
        "big.tsv:2: field larger than field limit (131072): no text to classify is that long; is the file damaged, "
        "or not tab-separated?"),
    "finetune: a train.tsv field longer than 131072 characters": (
        lambda d: ["finetune", "--model", d.hf(), "--data-dir", d.texts("label\ttext_a\n1\t" + "w1 " * 50_000 + "\n",
                                                                      "train.tsv")[:-len("/train.tsv")],
                   "--output", str(d.tmp_path / "out"), *TRAIN],
        "train.tsv:2: field larger than field limit (131072)"),
    "predict: a .jsonl line nested 100 000 deep": (
        lambda d: _predict(d.model(), "--input", d.texts('{"text": ' + "[" * 100_000 + "\n", "deep.jsonl")),
        "deep.jsonl:1: JSON nested too deeply; expected one flat object a line"),
    "evaluate: --bootstrap-samples 20000000": (
        lambda d: ["evaluate", "--model", d.distilled(), "--data-dir", d.data(), "--output", str(d.tmp_path / "ev"),
                   "--bootstrap-samples", "20000000", "--threads", "1"],
        "bootstrap samples must be a whole number in [100, 100000], got 20000000"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_input_is_one_line_naming_it(case, request, tmp_path, capsys):
    """Every command's damaged inputs (issue 25): one line naming the file (or flag), exit 2, nothing written."""
    build, message = DAMAGED[case]
    argv = build(Damage(request, tmp_path))
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert message in _error(capsys, argv[0])
    assert capsys.readouterr().out == ""
    assert not any((tmp_path / name).exists() for name in ("out", "e", "ev"))
