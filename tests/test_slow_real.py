"""Slow: the offline MiniLM fine-tuned on real SST-2 (a few minutes on 2 CPU cores)."""
import pytest

from paddle_dynafast.config import DataConfig, FinetuneConfig, TrainConfig
from paddle_dynafast.model import loading
from paddle_dynafast.train.finetune import finetune


@pytest.mark.slow
def test_minilm_learns_sst2_in_one_short_epoch(tmp_path, shared_dir):
    try:
        model_dir = loading.minilm_dir()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    config = FinetuneConfig(
        output_dir=str(tmp_path / "teacher"), model_dir=str(model_dir),
        data=DataConfig(data_dir=str(shared_dir / "data" / "sst2"), max_seq_len=64, max_examples=2000),
        train=TrainConfig(epochs=1, batch_size=32, lr=1e-4, seed=42))
    metrics = finetune(config).metrics
    print(metrics["dev_accuracy"], metrics["train_seconds"])
    assert metrics["train_steps"] == 63
    assert metrics["dev_accuracy"] >= 0.80, metrics  # 872 dev examples; full training reaches 0.88
