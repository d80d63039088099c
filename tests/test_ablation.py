"""benchmarks/ablation.py run as its docstring says, on the tiny teacher: levers combine, unknown or clashing ones are
refused, and with --quick every lever trains, is measured and lands in the tables. The script is run, not imported."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"


def ablation(*args, returncode: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == returncode, done.stderr[-3000:]
    return done


def resplit_files(out: Path) -> dict:
    """Each resplits.json under ``out`` by its inode and time: a file written again (atomically) gets a new inode."""
    return {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in out.glob("seed-*/*/resplits.json")}


def test_levers_combine_share_supernets_and_refuse_unknown_or_clashing_ones(tmp_path, toy_data, tiny_teacher_dir):
    common = ["--teacher", tiny_teacher_dir, "--data", toy_data, "--output", tmp_path / "ablation", "--threads", "1"]
    # 200 training texts, 100 of them held out for importance (at most half): baseline supernet 3 epochs x 4
    # batches of 32, branches 3 x 7; augmented stages 1 epoch over 3x the texts (ceil(300 / 32), ceil(600 / 32))
    planned = ablation(*common, "--plan", "--levers", "supernet-augment+branches-augment", "logit-0.1+branches-mix",
                       "branches-mix").stdout.splitlines()
    steps = {line.split()[3]: int(line.split()[4]) for line in planned if line.startswith("seed 42 ")}
    assert steps == {"supernet-baseline": 12, "dynafast-baseline": 21,
                     "supernet-supernet-augment": 10, "dynafast-supernet-augment+branches-augment": 19,
                     "supernet-logit-0.1": 12, "dynafast-logit-0.1+branches-mix": 21,
                     "dynafast-branches-mix": 21}  # branches-mix trains no supernet of its own
    assert "unknown lever(s) ['supernet-unlabeled']" in ablation(  # it needs --unlabeled
        *common, "--levers", "supernet-unlabeled", returncode=1).stderr
    assert "lever 'branches-augment+branches-augment' sets distill ['augment'] twice" in ablation(
        *common, "--levers", "branches-augment+branches-augment", returncode=1).stderr
    assert not (tmp_path / "ablation").exists()  # the levers are checked before any work


def test_quick_ablation_on_the_tiny_teacher(tmp_path, toy_data, tiny_teacher_dir):
    out = tmp_path / "ablation"
    common = ["--teacher", str(tiny_teacher_dir), "--data", str(toy_data), "--output", str(out), "--quick",
              "--threads", "1", "--levers", "branches-mix", "supernet-augment", "--seeds", "3"]
    # (what --plan lists before anything is trained: the test above)
    assert ablation(*common).stdout.strip().endswith(f"-> {out / 'ablation.md'}")
    report = json.loads((out / "ablation.json").read_text())
    rows = {r["lever"]: r for r in report["rows"]}
    assert set(rows) == {"baseline", "branches-mix", "supernet-augment"}
    assert rows["branches-mix"]["paths"]["supernet"] == rows["baseline"]["paths"]["supernet"]
    assert rows["supernet-augment"]["steps"]["supernet"] == 3
    stage = json.loads((Path(rows["supernet-augment"]["paths"]["supernet"]) / "stage.json").read_text())
    assert stage["num_examples"]["train"] == 3 * (160 - 32)  # two augmented copies of each text
    mix = json.loads((Path(rows["branches-mix"]["paths"]["distill"]) / "stage.json").read_text())["config"]
    baseline = json.loads((Path(rows["baseline"]["paths"]["distill"]) / "stage.json").read_text())["config"]
    assert (mix["objective"], mix["mix_alpha"], baseline["objective"]) == ("mix", 0.5, "distill")
    for row in rows.values():
        assert row["widths"]["0.5"]["dev_vs_teacher"]["low"] <= row["widths"]["0.5"]["dev_vs_teacher"]["delta"]
        assert set(row["points"]) == {"budget", "3x", "5x"} and row["resplits"]["repeats"] == 3
    mix = rows["branches-mix"]["vs_baseline_test"]
    # the same supernet: at speed 0 (no early exit) the lever and the baseline are the same model
    assert mix["paired"]["0.5@0"] == {"delta": 0.0, "low": 0.0, "high": 0.0, "mcnemar_p": 1.0}
    text = (out / "ablation.md").read_text()
    for heading in ("Width: the supernet against the teacher", "Operating points chosen on dev",
                    "Against the baseline of the same seed", "PABEE patience against entropy", "Training time",
                    "The budget's promise on re-split examples"):
        assert heading in text
    assert "| branches-mix | 3 |" in text
    # a later call on one lever writes the tables of that lever (the re-splits of its evaluations, already made,
    # are read back, not made again: no resplits.json is written again); --report gathers every call's levers again
    resplits = resplit_files(out)
    assert len(resplits) == 3
    ablation(*[a if a != "supernet-augment" else "branches-mix" for a in common])
    assert resplit_files(out) == resplits
    assert json.loads((out / "ablation.json").read_text())["rows"][0]["resplits"] == rows["baseline"]["resplits"]
    assert "supernet-augment" not in (out / "ablation.md").read_text()
    ablation(*common[:9], "--report")
    assert sorted((out / "ablation.md").read_text().splitlines()) == sorted(text.splitlines())  # rows reordered
    assert [(r["lever"], r["seed"]) for r in json.loads((out / "ablation.json").read_text())["rows"]] == [
        ("baseline", 3), ("supernet-augment", 3), ("branches-mix", 3)]
    planned = ablation(*common, "--plan").stdout  # everything is trained now
    assert planned.count(" done") == 5 and "training still to do: ~0.0 h" in planned
    # a finished run made with the baseline's configuration elsewhere is adopted as a seed's baseline, not retrained
    run = tmp_path / "pipeline-run"
    shutil.copytree(Path(rows["baseline"]["paths"]["supernet"]), run / "supernet")
    shutil.copytree(Path(rows["baseline"]["paths"]["distill"]), run / "dynafast")
    other = [a if a != str(out) else str(tmp_path / "other") for a in common]
    planned = ablation(*other, "--plan", "--seeds", "3", "4", "--adopt-baseline", run).stdout
    assert planned.count("adopted: ") == 1 and planned.count(" -> ") == 2
    assert "seed 3 supernet supernet-baseline" in planned and planned.count(" done") == 2  # seed 3's baseline only
    stage = json.loads((tmp_path / "other" / "seed-3" / "dynafast-baseline" / "stage.json").read_text())
    assert stage["config"]["model_dir"] == str(tmp_path / "other" / "seed-3" / "supernet-baseline")
