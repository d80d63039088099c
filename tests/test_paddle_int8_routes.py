"""benchmarks/paddle_int8_routes.py run as its docstring says on the tiny teacher: every route asked for is a row
with where it broke. On Paddle 3.3.1 (the version docs/deployment.md reports on) the routes break where the
documentation says; a Paddle on which one works fails this test, so that the documentation is brought up to date."""
import json
import subprocess
import sys
from pathlib import Path

import paddle
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paddle_int8_routes.py"
DOCUMENTED = "3.3.1"


@pytest.mark.parametrize("route, stage, frame", [
    ("static-ptq", "quantize", "paddle/static/quantization/post_training_quantization.py:591"),
    ("onnxruntime-backend", None, None),
])
def test_each_route_reports_where_it_breaks(tmp_path, tiny_teacher_dir, route, stage, frame):
    output = tmp_path / "routes.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_teacher_dir), "--route", route,
                           "--output", str(output)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())["routes"][route]
    rows = [line for line in done.stdout.splitlines() if line.startswith(f"| {route} |")]
    assert len(rows) == 1 and result["error"] in rows[0]
    if paddle.__version__ != DOCUMENTED:
        pytest.skip(f"the breaks are documented for Paddle {DOCUMENTED}, this is {paddle.__version__}")
    assert result["works"] is False
    assert result.get("stage") == stage
    if frame:
        assert result["frame"].startswith(frame)
    else:
        assert "not compiled with ONNX Runtime" in result["error"]
