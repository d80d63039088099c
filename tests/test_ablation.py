"""benchmarks/ablation.py --quick on the tiny teacher: every lever trains, is measured and lands in the tables."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("ablation",
                                              Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py")
ablation = importlib.util.module_from_spec(spec)
sys.modules["ablation"] = ablation  # its dataclasses look their module up
spec.loader.exec_module(ablation)


def test_levers_combine_and_share_supernets():
    table = ablation.levers(None)
    both = ablation.combine("supernet-augment+branches-mix", table)
    assert both.supernet["augment"].copies == 2 and both.supernet_train == {"epochs": 1}
    assert both.distill == {"objective": "mix", "mix_alpha": 0.5}
    assert ablation.supernet_key("branches-mix", table) == "baseline"
    assert ablation.supernet_key("logit-0.1+branches-mix", table) == "logit-0.1"
    with pytest.raises(SystemExit, match="unknown lever"):
        ablation.combine("supernet-unlabeled", table)  # needs --unlabeled
    with pytest.raises(SystemExit, match="sets distill \\['augment'\\] twice"):
        ablation.combine("branches-augment+branches-augment", table)


def test_quick_ablation_on_the_tiny_teacher(tmp_path, toy_data, tiny_teacher_dir, capsys, monkeypatch):
    out = tmp_path / "ablation"
    common = ["--teacher", str(tiny_teacher_dir), "--data", str(toy_data), "--output", str(out), "--quick",
              "--threads", "1", "--levers", "branches-mix", "supernet-augment", "--seeds", "3"]
    ablation.main(common + ["--plan"])
    planned = capsys.readouterr().out
    assert "supernet-baseline" in planned and "supernet-supernet-augment" in planned and "dynafast-branches-mix" in planned
    assert planned.count("supernet ") == 2  # branches-mix trains no supernet of its own
    ablation.main(common)
    report = json.loads((out / "ablation.json").read_text())
    rows = {r["lever"]: r for r in report["rows"]}
    assert set(rows) == {"baseline", "branches-mix", "supernet-augment"}
    assert rows["branches-mix"]["paths"]["supernet"] == rows["baseline"]["paths"]["supernet"]
    assert rows["supernet-augment"]["steps"]["supernet"] == 3
    stage = json.loads((Path(rows["supernet-augment"]["paths"]["supernet"]) / "stage.json").read_text())
    assert stage["num_examples"]["train"] == 3 * (160 - 32)  # two augmented copies of each text
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
    # are read back, not made again); --report gathers every call's levers again
    from paddle_dynafast.analysis import calibrate

    def made_again(*args, **kwargs):
        raise AssertionError("re-splits computed again for an evaluation that has them")

    with monkeypatch.context() as patch:
        patch.setattr(calibrate, "resplit_promises", made_again)
        ablation.main([a if a != "supernet-augment" else "branches-mix" for a in common])
    assert json.loads((out / "ablation.json").read_text())["rows"][0]["resplits"] == rows["baseline"]["resplits"]
    assert "supernet-augment" not in (out / "ablation.md").read_text()
    ablation.main(common[:9] + ["--report"])
    assert sorted((out / "ablation.md").read_text().splitlines()) == sorted(text.splitlines())  # rows reordered
    assert [(r["lever"], r["seed"]) for r in json.loads((out / "ablation.json").read_text())["rows"]] == [
        ("baseline", 3), ("supernet-augment", 3), ("branches-mix", 3)]
    capsys.readouterr()
    ablation.main(common + ["--plan"])  # everything is trained now
    planned = capsys.readouterr().out
    assert planned.count(" done") == 5 and "training still to do: ~0.0 h" in planned
    # a finished run made with the baseline's configuration elsewhere is adopted as a seed's baseline, not retrained
    import shutil

    run = tmp_path / "pipeline-run"
    shutil.copytree(Path(rows["baseline"]["paths"]["supernet"]), run / "supernet")
    shutil.copytree(Path(rows["baseline"]["paths"]["distill"]), run / "dynafast")
    other = [a if a != str(out) else str(tmp_path / "other") for a in common]
    ablation.main(other + ["--plan", "--seeds", "3", "4", "--adopt-baseline", str(run)])
    planned = capsys.readouterr().out
    assert planned.count("adopted: ") == 1 and planned.count(" -> ") == 2
    assert "seed 3 supernet supernet-baseline" in planned and planned.count(" done") == 2  # seed 3's baseline only
    stage = json.loads((tmp_path / "other" / "seed-3" / "dynafast-baseline" / "stage.json").read_text())
    assert stage["config"]["model_dir"] == str(tmp_path / "other" / "seed-3" / "supernet-baseline")
