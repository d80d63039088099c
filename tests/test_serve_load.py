"""benchmarks/serve_load.py run as its docstring says, at a tiny scale: it starts a batching and a one-by-one server
of the tiny export, every request gets its answer, that of its own text (the script stops otherwise), the offline
throughput is measured beside them, and both tables are written. The script is run, not imported."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"


def test_serve_load_measures_both_servers(tmp_path, tiny_exports, toy_data):
    out = tmp_path / "serve-load"
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_exports[(1.0, True)]), "--data-dir",
                           str(toy_data), "--speeds", "0.3", "--clients", "4", "--requests", "3", "--rounds", "1",
                           "--threads", "1", "--runtime", "paddle-inference", "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "serve_load.json").read_text())
    rows = {row["server"]: row for row in report["rows"]}
    assert set(rows) == {"batching", "one by one"} and {row["speed"] for row in rows.values()} == {0.3}
    for row in rows.values():
        assert row["requests"] == 12 and row["requests_per_second"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
        assert 1 <= row["mean_exit_layer"] <= 2  # the tiny model has two layers
        assert row["offline_texts_per_second"] > 0 and row["largest_probability_difference"] <= 1e-4
        assert row["served_over_offline"] == row["texts_per_second"] / row["offline_texts_per_second"]
    assert rows["one by one"]["requests_per_batch"] == 1.0 and rows["batching"]["requests_per_batch"] >= 1.0
    assert report["runs"].keys() == {"0.3 batching", "0.3 one by one"}
    table = (out / "serve_load.md").read_text()
    assert table.startswith("| speed | server | requests/s | texts/s | offline texts/s | served / offline |")
    assert "speed 0.3: batching gives " in table and " the throughput of one by one" in table
    assert len(report["offline"]["0.3"]) == 1
    assert done.stdout.strip().endswith(f"-> {out}/serve_load.{{json,md}}")
