"""Every example runs (on a tiny model and toy data) through the public API."""
import subprocess
import sys
from pathlib import Path

from helpers import write_sentiment_data

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_finetune_example(tmp_path, tiny_hf_dir):
    write_sentiment_data(tmp_path / "data", n_train=64, n_dev=16, n_test=16)
    result = subprocess.run([sys.executable, str(EXAMPLES / "finetune_minilm.py"), "--model", str(tiny_hf_dir),
                             "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
                             "--max-steps", "3"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dev accuracy" in result.stdout and (tmp_path / "out" / "model_state.pdparams").is_file()
