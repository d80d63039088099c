"""benchmarks/paddle_int8_routes.py run as its docstring says on the tiny teacher, one route at a time: each is a row
with where it broke. On Paddle 3.3.1 (the version docs/deployment.md reports on) every route breaks where the
documentation says; a Paddle on which one works fails this test, so that the documentation is brought up to date."""
import json
import subprocess
import sys
from pathlib import Path

import paddle
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paddle_int8_routes.py"
DOCUMENTED = "3.3.1"


@pytest.mark.parametrize("route, stage, where", [
    ("static-ptq", "quantize", "paddle/static/quantization/post_training_quantization.py:591"),
    ("slim-ptq", "quantize", "paddle/static/quantization/post_training_quantization.py:591"),
    ("legacy-program", "save", "must be Value, but got Variable"),
    ("dygraph-ptq", "save", "paddle/nn/quant/format.py:194"),
    ("dygraph-ptq-fixed", "Paddle Inference", "Tensor holds no memory"),
    ("onnxruntime-backend", None, "not compiled with ONNX Runtime"),
])
def test_each_route_reports_where_it_breaks(tmp_path, tiny_teacher_dir, route, stage, where):
    output = tmp_path / "routes.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_teacher_dir), "--route", route,
                           "--output", str(output)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())["routes"][route]
    rows = [line for line in done.stdout.splitlines() if line.startswith(f"| {route} |")]
    assert len(rows) == 1 and result["error"] in rows[0]
    if paddle.__version__ != DOCUMENTED:
        pytest.skip(f"the breaks are documented for Paddle {DOCUMENTED}, this is {paddle.__version__}")
    assert result["works"] is False and result.get("stage") == stage
    assert where in f"{result.get('frame', '')} {result['error']}"
