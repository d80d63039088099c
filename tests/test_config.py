"""Configs reject bad values with errors that name them, and round-trip through JSON dicts."""
import dataclasses
import json

import pytest

from paddle_dynafast.config import (BranchConfig, Budget, CalibrateConfig, DataConfig, EvaluateConfig, FinetuneConfig,
                                    ModelSize, PipelineConfig, SupernetConfig, TimedCalibrateConfig, TrainConfig,
                                    from_dict, to_dict)


@pytest.mark.parametrize("build, message", [
    (lambda: DataConfig("d", max_seq_len=2), "max_seq_len 2 is too short"),
    (lambda: DataConfig("d", max_examples=0), "max_examples must be >= 1 or None, got 0"),
    (lambda: DataConfig("d", max_eval_examples=0), "max_eval_examples must be >= 1 or None, got 0"),
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
    (lambda: TimedCalibrateConfig("m", "o", DataConfig("d"), rounds=0), "rounds must be >= 1, got 0"),
    (lambda: PipelineConfig("o", DataConfig("d"), timed_rounds=0), "timed_rounds must be >= 1, got 0"),
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


@pytest.mark.parametrize("build, message", [
    (lambda: TrainConfig(lr=float("inf")), "lr must be a finite number, got inf"),
    (lambda: TrainConfig(weight_decay=float("nan")), "weight_decay must be a finite number, got nan"),
    (lambda: TrainConfig(max_grad_norm=float("inf")), "max_grad_norm must be a finite number, got inf"),
    (lambda: DataConfig("d", dev_fraction=float("nan")), "dev_fraction must be a finite number, got nan"),
    (lambda: CalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=float("nan")),
     "max_accuracy_drop must be a finite number, got nan"),
    (lambda: CalibrateConfig("m", "o", DataConfig("d"), min_flops_speedup=float("inf")),
     "min_flops_speedup must be a finite number, got inf"),
    (lambda: SupernetConfig("o", "t", DataConfig("d"), lambda_logit=float("inf")),
     "lambda_logit must be a finite number, got inf"),
    (lambda: BranchConfig(dropout=float("nan")), "dropout must be a finite number, got nan"),
    (lambda: EvaluateConfig("m", "o", DataConfig("d"), speeds=(0.0, float("nan"))),
     "speeds must be finite numbers, got nan"),
    (lambda: PipelineConfig("o", DataConfig("d"), max_accuracy_drop=float("inf")),
     "max_accuracy_drop must be a finite number, got inf"),
    (lambda: TrainConfig(seed=-1), "seed must be a whole number in [0, 4294967295], got -1"),
    (lambda: TrainConfig(seed=2 ** 32), "seed must be a whole number in [0, 4294967295], got 4294967296"),
    (lambda: DataConfig("d", split_seed=-1), "split_seed must be a whole number in [0, 4294967295], got -1"),
    (lambda: DataConfig("d", labels=("0",)), "labels ['0'] must be at least 2 distinct labels"),
    (lambda: DataConfig("d", labels=("0", "1", "0")), "must be at least 2 distinct labels"),
    (lambda: DataConfig("d", labels=("0", "a b")), "label 'a b' is empty or holds white space"),
    (lambda: DataConfig("d", labels="01"), "labels must be a list of label strings"),
])
def test_every_float_is_finite_and_every_seed_in_range(build, message):
    with pytest.raises(ValueError) as error:
        build()
    assert message in str(error.value)


def test_an_explicit_label_set_round_trips():
    config = DataConfig("d", labels=["neg", "pos"])
    assert config.labels == ("neg", "pos")
    assert from_dict(DataConfig, json.loads(json.dumps(to_dict(config)))) == config
    assert from_dict(DataConfig, {"data_dir": "d"}).labels is None  # a stage.json written before labels existed


@pytest.mark.parametrize("build, message", [
    (lambda: Budget(max_accuracy_drop=-0.1), "max_accuracy_drop must be >= 0 points, got -0.1"),
    (lambda: Budget(confidence=1.0), "confidence 1.0 is not in [0.5, 1) (or None for the raw dev drop)"),
    (lambda: Budget(confidence=0.4), "confidence 0.4 is not in [0.5, 1)"),
    (lambda: Budget(min_flops_speedup=0.5), "min_flops_speedup must be >= 1, got 0.5"),
    (lambda: Budget(min_throughput_speedup=0), "min_throughput_speedup must be > 0, got 0"),
    (lambda: Budget(max_latency_ms=-1), "max_latency_ms must be > 0, got -1"),
    (lambda: Budget(max_accuracy_drop=float("nan")), "max_accuracy_drop must be a finite number, got nan"),
    (lambda: Budget(max_latency_ms=float("inf")), "max_latency_ms must be a finite number, got inf"),
    # the configs that build a budget are checked by it, with the same messages
    (lambda: CalibrateConfig("m", "o", DataConfig("d"), min_flops_speedup=0.5),
     "min_flops_speedup must be >= 1, got 0.5"),
    (lambda: CalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=-1), "max_accuracy_drop must be >= 0 points"),
    (lambda: TimedCalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=-1),
     "max_accuracy_drop must be >= 0 points, got -1"),
    (lambda: TimedCalibrateConfig("m", "o", DataConfig("d"), min_throughput_speedup=-2.0),
     "min_throughput_speedup must be > 0, got -2.0"),
    (lambda: PipelineConfig("o", DataConfig("d"), confidence=0.3), "confidence 0.3 is not in [0.5, 1)"),
    (lambda: PipelineConfig("o", DataConfig("d"), min_flops_speedup=0.9), "min_flops_speedup must be >= 1, got 0.9"),
])
def test_a_bad_budget_is_named(build, message):
    with pytest.raises(ValueError) as error:
        build()
    assert message in str(error.value)


def test_the_budget_answers_for_hand_made_points():
    budget = Budget(max_accuracy_drop=0.5, confidence=0.9, min_flops_speedup=3.0)
    # promised drops are fractions, the budget is in points
    assert budget.within_accuracy(0.005) and not budget.within_accuracy(0.0051)
    assert budget.within_accuracy(-0.01)  # better than the full model
    # a measured difference against the full model: accuracy minus the full model's
    assert budget.held(-0.005) and budget.held(0.01) and not budget.held(-0.0051)
    assert budget.within_flops(3.0) and budget.within_flops(7.5) and not budget.within_flops(2.99)
    assert not Budget(min_flops_speedup=None).within_flops(100.0)  # no FLOPs budget: no point is within it
    assert not budget.has_time_budget and not budget.within_time(100.0, 0.01)  # likewise without a time budget
    both = Budget(min_throughput_speedup=2.0, max_latency_ms=5.0)
    assert both.has_time_budget and both.within_time(2.0, 5.0)
    assert not both.within_time(1.9, 1.0) and not both.within_time(4.0, 5.1)
    assert Budget(max_latency_ms=5.0).within_time(0.1, 4.0)  # no throughput budget: any throughput
    assert Budget(min_throughput_speedup=2.0).within_time(2.5, 1e6)  # no latency budget: any latency
    zero = Budget(max_accuracy_drop=0.0)
    assert zero.within_accuracy(0.0) and not zero.within_accuracy(0.0001) and zero.held(0.0)


def test_every_command_builds_its_budget_from_its_fields():
    assert CalibrateConfig("m", "o", DataConfig("d")).budget == Budget()  # every default once: the Budget's
    calibrate = CalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=1.0, confidence=None,
                                min_flops_speedup=2.0)
    assert calibrate.budget == Budget(max_accuracy_drop=1.0, confidence=None, min_flops_speedup=2.0)
    timed = TimedCalibrateConfig("m", "o", DataConfig("d"), max_accuracy_drop=2.0, max_latency_ms=3.0)
    assert timed.budget == Budget(max_accuracy_drop=2.0, min_flops_speedup=None, max_latency_ms=3.0)
    pipeline = PipelineConfig("o", DataConfig("d"), max_accuracy_drop=2.0, confidence=0.8, min_flops_speedup=4.0)
    assert pipeline.budget == Budget(max_accuracy_drop=2.0, confidence=0.8, min_flops_speedup=4.0)
    assert PipelineConfig("o", DataConfig("d")).budget == Budget()
    # the budget is built, not stored: the written config keeps its flat fields
    assert "budget" not in to_dict(calibrate) and to_dict(calibrate)["max_accuracy_drop"] == 1.0
