"""Configs reject bad values with errors that name them, and round-trip through JSON dicts."""
import dataclasses
import json

import pytest

from paddle_dynafast.config import DataConfig, FinetuneConfig, ModelSize, TrainConfig, from_dict, to_dict


@pytest.mark.parametrize("build, message", [
    (lambda: DataConfig("d", max_seq_len=2), "max_seq_len 2 is too short"),
    (lambda: DataConfig("d", max_examples=0), "max_examples must be >= 1 or None, got 0"),
    (lambda: DataConfig("d", dev_fraction=1.0), "dev_fraction 1.0 is not in (0, 1)"),
    (lambda: TrainConfig(epochs=0), "epochs must be a whole number >= 1, got 0"),
    (lambda: TrainConfig(batch_size=2.5), "batch_size must be a whole number >= 1, got 2.5"),
    (lambda: TrainConfig(lr=0), "lr must be > 0, got 0"),
    (lambda: TrainConfig(warmup_ratio=1.0), "warmup_ratio 1.0 is not in [0, 1)"),
    (lambda: TrainConfig(weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
    (lambda: TrainConfig(max_steps=0), "max_steps must be >= 1 or None, got 0"),
    (lambda: ModelSize(hidden_size=30, num_heads=4), "hidden_size 30 is not a multiple of num_heads 4"),
    (lambda: ModelSize(num_layers=0), "num_layers must be a whole number >= 1, got 0"),
    (lambda: FinetuneConfig("out", DataConfig("d")), "model_dir is None"),
    (lambda: FinetuneConfig("out", DataConfig("d"), model_dir="m", min_char_count=0), "min_char_count must be >= 1"),
])
def test_bad_values_are_named(build, message):
    with pytest.raises(ValueError) as error:
        build()
    assert message in str(error.value)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().lr = 1.0


def test_round_trip_through_json():
    config = FinetuneConfig("out", DataConfig("d", max_seq_len=64, max_examples=10), TrainConfig(lr=1e-4, max_steps=5),
                            model_dir="m", size=ModelSize(hidden_size=64, num_heads=2))
    again = from_dict(FinetuneConfig, json.loads(json.dumps(to_dict(config))))
    assert again == config


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match=r"TrainConfig has no field\(s\) \['learning_rate'\]"):
        from_dict(TrainConfig, {"learning_rate": 1.0})
