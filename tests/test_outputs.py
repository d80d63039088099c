"""The one output guard: whose a directory is, its own input, replace only when asked, one writer, no leftovers."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from paddle_dynafast import atomic, outputs
from paddle_dynafast.errors import ArtifactError, ConfigError, OutputBusyError

REPORT = outputs.Output("report", "report.json", "points", files=("report.json", "report.md"))


def _write_export(directory, **extra):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "export.json").write_text(json.dumps({"exit_loop": True, **extra}))


def test_a_new_or_empty_directory_is_free(tmp_path):
    with outputs.claim(tmp_path / "new", outputs.EXPORT) as earlier:
        assert earlier is False
    (tmp_path / "empty").mkdir()
    with outputs.claim(tmp_path / "empty", outputs.EXPORT) as earlier:
        assert earlier is False


def test_a_directory_the_command_did_not_write_is_refused_whatever_the_flags(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for replace in (False, True):
        with pytest.raises(ArtifactError, match=r"mine is not empty and paddle-dynafast export did not write it "
                                                r"\(it has no export.json\); choose another --output"):
            with outputs.claim(tmp_path / "mine", outputs.EXPORT, replace=replace):
                pass
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "stage.json").write_text(json.dumps({"stage": "finetune"}))
    with pytest.raises(ArtifactError, match=r"its stage.json is not a supernet directory's"):
        with outputs.claim(tmp_path / "teacher", outputs.stage_output("supernet"), replace=True):
            pass
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_earlier_output_is_replaced_only_when_asked(tmp_path):
    _write_export(tmp_path / "export")
    with pytest.raises(ArtifactError, match=r"export holds an earlier export output; pass --overwrite to replace it"):
        with outputs.claim(tmp_path / "export", outputs.EXPORT):
            pass
    with outputs.claim(tmp_path / "export", outputs.EXPORT, replace=True) as earlier:
        assert earlier is True
    stage = outputs.stage_output("finetune")
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "stage.json").write_text(json.dumps({"stage": "finetune"}))
    with outputs.claim(tmp_path / "teacher", stage) as earlier:  # a stage resumes: no flag needed to continue
        assert earlier is True


def test_a_command_writing_named_files_leaves_the_others(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("x")
    with outputs.claim(tmp_path / "d", REPORT) as earlier:
        assert earlier is False  # writes report.* beside notes.txt
    (tmp_path / "d" / "report.md").write_text("someone else's")
    with pytest.raises(ArtifactError, match=r"report.md exists and was not written by paddle-dynafast report"):
        with outputs.claim(tmp_path / "d", REPORT, replace=True):
            pass


def test_never_the_own_input(tmp_path):
    model = tmp_path / "runs" / "dynafast"
    model.mkdir(parents=True)
    for output in (model, tmp_path / "runs", tmp_path / "runs" / ".." / "runs" / "dynafast"):
        with pytest.raises(ConfigError, match=r"would write over the input .*dynafast of export; choose another"):
            with outputs.claim(output, outputs.EXPORT, [model], replace=True):
                pass
    with outputs.claim(model / "export", outputs.EXPORT, [model]):
        pass  # inside the input is fine
    with outputs.claim(tmp_path / "runs", REPORT, [model]):
        pass  # named files beside the input are fine too
    with pytest.raises(ConfigError, match="would write over the input"):
        with outputs.claim(model, REPORT, [model]):
            pass


def test_leftovers_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    stage = tmp_path / "teacher"
    stage.mkdir()
    (stage / "stage.json").write_text(json.dumps({"stage": "finetune"}))
    (stage / ".publish.ab12cd_9.tmp").mkdir()
    (stage / ".publish.ab12cd_9.tmp" / "model.safetensors").write_bytes(b"\0" * 1000)
    (stage / ".stage.json.x1y2z3w4.tmp").write_text("half")
    (stage / ".checkpoint.old-123").mkdir()
    (stage / ".hidden-notes").write_text("mine")
    (tmp_path / ".teacher.k9k9k9k9.tmp").mkdir()  # an atomic_dir of teacher
    (tmp_path / ".other.k9k9k9k9.tmp").mkdir()  # someone else's temporary
    with outputs.claim(stage, outputs.stage_output("finetune")):
        pass
    assert sorted(p.name for p in stage.iterdir()) == [".hidden-notes", "stage.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.k9k9k9k9.tmp", "teacher"]


def test_a_lock_refuses_a_second_writer_with_the_holders_pid(tmp_path):
    """Two processes: a child holds the lock of ``out``; this process is refused with its PID, then, once the child
    is killed with SIGKILL, takes the lock (the kernel released it) and removes the lock file when done."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from paddle_dynafast import outputs
        with outputs.locked({str(tmp_path / 'out')!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match=rf"out is being written by another paddle-dynafast process "
                                                  rf"\(PID {holder.pid}, lock .*\.out\.lock\)"):
            with outputs.claim(tmp_path / "out", outputs.EXPORT):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert (tmp_path / ".out.lock").is_file()  # left by the killed holder, no longer locked
    with outputs.claim(tmp_path / "out", outputs.EXPORT):
        assert (tmp_path / ".out.lock").read_text().strip() == str(os.getpid())
    assert not (tmp_path / ".out.lock").exists()


def test_two_identical_commands_one_runs_the_other_is_refused(tmp_path):
    """The same command twice at once on one output: exactly one does the work."""
    script = textwrap.dedent(f"""
        import sys, time
        from paddle_dynafast import atomic, outputs
        report = outputs.Output("report", "report.json", "points", files=("report.json",))
        try:
            with outputs.claim({str(tmp_path / 'out')!r}, report):
                time.sleep(3)
                atomic.write_text({str(tmp_path / 'out' / 'report.json')!r}, sys.argv[1])
        except outputs.OutputBusyError as error:
            print("refused", error)
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script, str(i)], stdout=subprocess.PIPE, text=True)
            for i in range(2)]
    out = [run.communicate(timeout=60)[0] for run in runs]
    assert sorted("refused" in o for o in out) == [False, True], out
    winner = [i for i, o in enumerate(out) if "refused" not in o][0]
    assert (tmp_path / "out" / "report.json").read_text() == str(winner)
    loser = out[1 - winner]
    assert f"PID {runs[winner].pid}" in loser


def test_a_file_or_unwritable_output_is_named_before_any_work(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ArtifactError, match=r"--output .*f is a file, not a directory"):
        with outputs.claim(tmp_path / "f", outputs.EXPORT):
            pass
    with pytest.raises(OSError, match="/proc"):
        with outputs.claim("/proc/paddle-dynafast-test/out", outputs.EXPORT):
            pass


def test_atomic_leftovers_match_only_their_own_names(tmp_path):
    for name in (".m.json.abcdefgh.tmp", ".publish.12345678.tmp", ".export.old-42", ".export.tmp", "x.tmp",
                 ".m.json.ABCDEFGH.tmp"):
        (tmp_path / name).write_text("")
    assert [p.name for p in atomic.leftovers(tmp_path)] == [".export.old-42", ".m.json.abcdefgh.tmp",
                                                                ".publish.12345678.tmp"]
    assert [p.name for p in atomic.leftovers(tmp_path, name="export")] == [".export.old-42"]
