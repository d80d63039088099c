"""benchmarks/compare.py: which points it measures by default beside the full model."""
import importlib.util
import json
import shutil
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("compare", Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py")
compare = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = compare
spec.loader.exec_module(compare)


def test_the_shipped_point_and_the_point_of_the_second_budget(tiny_pipeline_run, tmp_path):
    """After a calibration on measured time: the shipped point, and the fastest point whose promised drop is within 1
    point (not a faster one just outside it); none when that is the shipped point itself."""
    config, _ = tiny_pipeline_run
    run = tmp_path / "run"
    for name in ("export", "calibration"):
        shutil.copytree(Path(config.output_dir) / name, run / name, ignore=shutil.ignore_patterns("exports"))
    timed_file = run / "calibration" / "timed.json"
    timed = json.loads(timed_file.read_text())
    shipped = timed["fastest_within_accuracy_budget"]
    others = [p for p in timed["points"] if (p["width"], p["speed"]) != (shipped["width"], shipped["speed"])]
    chosen, faster = others[0], others[1]
    for p in timed["points"]:
        p["promised_drop"] = 0.05  # 5 points: outside 1 point
    chosen.update(promised_drop=0.005, throughput=1000.0)
    faster.update(promised_drop=0.0101, throughput=2000.0)  # just outside 1 point
    timed_file.write_text(json.dumps(timed))
    points = compare.default_points(run)
    assert points == [{"width": shipped["width"], "speed": shipped["speed"], "label": "shipped, budget 2",
                       "shipped": True},
                      {"width": chosen["width"], "speed": chosen["speed"], "label": "budget 1.0"}]
    chosen.update(width=shipped["width"], speed=shipped["speed"])  # the same point as the shipped one: measured once
    timed_file.write_text(json.dumps(timed))
    assert compare.default_points(run) == points[:1]


def test_the_native_below_row_is_measured_on_its_own_export(monkeypatch):
    asked = []

    def crossover(directory, threads, speed):
        asked.append((directory, threads, speed))
        return 8, {}

    monkeypatch.setattr(compare.choose, "crossover", crossover)
    label = next(label for _, _, options, label in compare.RUNTIMES if options.get("native_below") == compare.MEASURED)
    spec = {"name": f"(d) w1 s0.1 (shipped), {label}", "kind": "paddle-inference", "precision": "fp32",
            "options": {"onednn": True, "native_below": compare.MEASURED}, "directory": "d", "speed": 0.1}
    got = compare.with_crossover(spec, 2)
    assert got["options"] == {"onednn": True, "native_below": 8} and asked == [("d", 2, 0.1)]
    assert got["name"] == "(d) w1 s0.1 (shipped), Paddle Inference oneDNN fp32, native below 8"
    plain = {**spec, "options": {"onednn": False}}
    assert compare.with_crossover(plain, 2) is plain and len(asked) == 1
