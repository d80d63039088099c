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
    """What the writers of paddle_dynafast.atomic leave when killed (marked temporaries) is removed; the user's files
    and directories whose names look like temporaries are kept, whatever they hold (issue 25)."""
    stage = tmp_path / "teacher"
    stage.mkdir()
    (stage / "stage.json").write_text(json.dumps({"stage": "finetune"}))
    published = atomic.make_temporary(stage, "publish")  # a publish_files of the stage, killed
    (published / "model.safetensors").write_bytes(b"\0" * 1000)
    atomic.make_temporary(stage, "stage.json")  # an atomic write of stage.json, killed
    replaced = atomic.make_temporary(tmp_path, "teacher")  # an atomic_dir of teacher, killed
    (replaced / "teacher").mkdir()
    # the user's, named like temporaries
    (stage / ".publish.ab12cd_9.tmp").mkdir()
    (stage / ".publish.ab12cd_9.tmp" / "KEEP").write_text("mine")
    (stage / ".stage.json.x1y2z3w4.tmp").write_text("mine")
    (stage / ".config.old-2").write_text("mine")
    (stage / ".hidden-notes").write_text("mine")
    (tmp_path / ".teacher.old-1").mkdir()
    (tmp_path / ".teacher.old-1" / "KEEP").write_text("mine")
    (tmp_path / ".teacher.k9k9k9k9.tmp").mkdir()
    (tmp_path / ".teacher.k9k9k9k9.tmp" / atomic.MARKER).write_text("paddle-dynafast temporary .other.k9k9k9k9.tmp\n")
    (tmp_path / ".other.k9k9k9k9.tmp").mkdir()  # someone else's temporary
    with outputs.claim(stage, outputs.stage_output("finetune")):
        pass
    assert sorted(p.name for p in stage.iterdir()) == [".config.old-2", ".hidden-notes", ".publish.ab12cd_9.tmp",
                                                       ".stage.json.x1y2z3w4.tmp", "stage.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.k9k9k9k9.tmp", ".teacher.k9k9k9k9.tmp",
                                                          ".teacher.old-1", "teacher"]
    assert (stage / ".publish.ab12cd_9.tmp" / "KEEP").read_text() == "mine"


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".out.lock").symlink_to(victim)
    with pytest.raises(ArtifactError, match=r"the lock file .*\.out\.lock of --output .*out is a symbolic link \(to "
                                            r".*victim.txt\); paddle-dynafast never writes through a link: remove it"):
        with outputs.claim(tmp_path / "out", outputs.EXPORT):
            pass
    assert victim.read_text() == "precious" and (tmp_path / ".out.lock").is_symlink()
    os.mkfifo(tmp_path / ".fifo.lock")
    with pytest.raises(ArtifactError, match=r"the lock file .*\.fifo\.lock of --output .*fifo is not a regular file"):
        with outputs.locked(tmp_path / "fifo"):
            pass


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


def test_atomic_leftovers_match_only_their_own_marked_temporaries(tmp_path):
    for name in (".m.json.abcdefgh.tmp", ".publish.12345678.tmp", ".export.old-42", ".export.tmp", "x.tmp",
                 ".m.json.ABCDEFGH.tmp"):
        (tmp_path / name).write_text("")
    ours = [atomic.make_temporary(tmp_path, "export"), atomic.make_temporary(tmp_path, "m.json")]
    (tmp_path / ".link.abcdefgh.tmp").symlink_to(ours[0], target_is_directory=True)  # a link to one is not one
    assert atomic.leftovers(tmp_path) == sorted(ours)
    assert atomic.leftovers(tmp_path, name="export") == ours[:1]
    assert [atomic.leftovers_name(p) for p in ours] == ["export", "m.json"]


def test_an_output_file_is_claimed_like_a_directory(tmp_path):
    """predict --output: never the input, never inside the model directory, an existing file only when asked, one
    writer at a time, written whole or not at all, leftovers of a killed run removed."""
    model, text = tmp_path / "export", tmp_path / "in.txt"
    model.mkdir()
    (model / "vocab.txt").write_text("[PAD]\n")
    text.write_text("good\n")
    for output in (model / "vocab.txt", model / "new.jsonl", model, tmp_path / "link" / "vocab.txt"):
        (tmp_path / "link").unlink(missing_ok=True)
        (tmp_path / "link").symlink_to(model, target_is_directory=True)
        with pytest.raises(ConfigError, match=r"--output .* is inside .*export, which predict reads; an input is "):
            with outputs.claim_file(output, "predict", [text], [model]):
                pass
    with pytest.raises(ConfigError, match=r"would write over the input .*in.txt of predict"):
        with outputs.claim_file(text, "predict", [text], [model], replace=True):
            pass
    assert (model / "vocab.txt").read_text() == "[PAD]\n" and sorted(os.listdir(model)) == ["vocab.txt"]
    existing = tmp_path / "existing.txt"
    existing.write_text("mine\n")
    with pytest.raises(ArtifactError, match=r"--output .*existing.txt exists; pass --overwrite to replace it"):
        with outputs.claim_file(existing, "predict"):
            pass
    with pytest.raises(RuntimeError):  # a failure half-way (a full disk, a bad line): the old file stays whole
        with outputs.claim_file(existing, "predict", replace=True) as f:
            f.write("half")
            raise RuntimeError("stopped")
    assert existing.read_text() == "mine\n"
    leftover = atomic.make_temporary(tmp_path, "existing.txt")  # a killed run's
    with outputs.claim_file(existing, "predict", replace=True) as f:
        f.write("new\n")
    assert existing.read_text() == "new\n" and not leftover.exists()
    assert sorted(os.listdir(tmp_path)) == ["existing.txt", "export", "in.txt", "link"]
    (tmp_path / "dir").mkdir()
    with pytest.raises(ArtifactError, match=r"--output .*dir is a directory; predict writes one file"):
        with outputs.claim_file(tmp_path / "dir", "predict"):
            pass


def test_a_stream_is_written_as_it_is(tmp_path):
    """``--output /dev/stdout`` or a named pipe: nothing to replace, no lock or temporary beside it."""
    import threading

    os.mkfifo(tmp_path / "pipe")
    received = []
    reader = threading.Thread(target=lambda: received.append((tmp_path / "pipe").read_text()), daemon=True)
    reader.start()
    with outputs.claim_file(tmp_path / "pipe", "predict") as f:
        f.write("line\n")
    reader.join(10)
    assert received == ["line\n"] and os.listdir(tmp_path) == ["pipe"]
