import os
from pathlib import Path

import pytest

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared is not beside the repository ({SHARED} missing)")
    return SHARED


@pytest.fixture()
def tiny_hf_dir(tmp_path):
    from helpers import tiny_hf_weights, write_hf_dir

    return write_hf_dir(tmp_path / "tiny_hf", tiny_hf_weights(seed=0))


@pytest.fixture()
def tiny_model(tiny_hf_dir):
    from paddle_dynafast.backbone import load_classifier

    loaded = load_classifier(tiny_hf_dir, num_labels=3)
    return loaded.model
